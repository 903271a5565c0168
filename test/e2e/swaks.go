//go:build e2e

package e2e

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Send describes one swaks run: one SMTP session, one message.
type Send struct {
	Listener  Listener
	Auth      string // "PLAIN", "LOGIN" or "" (no AUTH)
	User      string
	Password  string
	NoTLS     bool // stay in plain text on a STARTTLS listener
	From      string
	To        []string
	MessageID string   // without angle brackets; generated when empty
	Headers   []string // extra "Name: value" headers (--add-header)
}

// SwaksResult is what one swaks run said.
type SwaksResult struct {
	Args       []string
	Transcript string
	ExitCode   int
	MessageID  string
	Duration   time.Duration
	Exchanges  []Exchange
}

// Exchange pairs a client line with the server's reply to it. The banner
// has an empty Cmd; the end of DATA has Cmd ".".
type Exchange struct {
	Cmd  string // as swaks printed it, e.g. "RCPT TO:<a@b>"
	Code int    // 0 when swaks saw no reply (connection lost)
	Enh  string // enhanced status code (RFC 3463), "" if none
	Text string // the reply's last line, without code
	Err  bool   // swaks marked the reply as unexpected (<** / <~*)
}

func (e Exchange) String() string {
	if e.Enh != "" {
		return fmt.Sprintf("%d %s %s", e.Code, e.Enh, e.Text)
	}
	return fmt.Sprintf("%d %s", e.Code, e.Text)
}

var msgSeq atomic.Int64

// NewMessageID returns a unique Message-Id (without brackets).
func NewMessageID(tag string) string {
	return fmt.Sprintf("%s.%d.%d@e2e.test", tag, time.Now().UnixNano(), msgSeq.Add(1))
}

// Swaks runs the real swaks for one session and parses its transcript.
// A non-zero exit is not an error (SMTP refusals are what tests look
// for); an error means swaks could not run at all.
func Swaks(ctx context.Context, s Send) (*SwaksResult, error) {
	if s.MessageID == "" {
		s.MessageID = NewMessageID("e2e")
	}
	args := []string{
		"--server", "127.0.0.1", "--port", strconv.Itoa(s.Listener.Port),
		"--helo", "client.e2e.test", "--timeout", "30",
		"--from", s.From, "--to", strings.Join(s.To, ","),
		"--header", "Message-Id: <" + s.MessageID + ">",
		"--header", "Subject: relaycap e2e " + s.MessageID,
		"--body", "relaycap end-to-end test message " + s.MessageID,
	}
	switch {
	case s.Listener.ImplicitTLS:
		args = append(args, "--tls-on-connect")
	case !s.NoTLS:
		args = append(args, "--tls")
	}
	if s.Auth != "" {
		args = append(args, "--auth", s.Auth, "--auth-user", s.User, "--auth-password", s.Password)
	}
	for _, h := range s.Headers {
		args = append(args, "--add-header", h)
	}
	t0 := time.Now()
	cmd := exec.CommandContext(ctx, "swaks", args...)
	out, err := cmd.CombinedOutput()
	res := &SwaksResult{Args: args, Transcript: string(out), MessageID: s.MessageID, Duration: time.Since(t0)}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		res.ExitCode = ee.ExitCode()
	case err != nil:
		return res, fmt.Errorf("swaks: %w\n%s", err, out)
	}
	res.Exchanges = ParseSwaks(res.Transcript)
	return res, nil
}

// Swaks prints the server's lines as "<-  " (plain), "<~  " (under TLS),
// "<** " / "<~* " (a reply it did not expect, i.e. an error) and its own as
// " -> ", " ~> ", " **> ", " ~*> ".
var (
	serverLine = regexp.MustCompile(`^<(-|~|\*\*|~\*) +(\d{3})([ -])(.*)$`)
	clientLine = regexp.MustCompile(`^ (-|~|\*\*|~\*)> (.*)$`)
	enhCode    = regexp.MustCompile(`^([245]\.\d{1,3}\.\d{1,3}) (.*)$`)
)

// ParseSwaks turns a transcript into command/reply pairs. Swaks does not
// pipeline unless asked to, so every reply answers the last client line
// (for DATA content, the final ".").
func ParseSwaks(transcript string) []Exchange {
	var out []Exchange
	lastCmd := ""
	for _, line := range strings.Split(transcript, "\n") {
		line = strings.TrimRight(line, "\r")
		if m := clientLine.FindStringSubmatch(line); m != nil {
			lastCmd = m[2]
			continue
		}
		m := serverLine.FindStringSubmatch(line)
		if m == nil || m[3] == "-" { // not a reply, or not its last line
			continue
		}
		code, _ := strconv.Atoi(m[2])
		e := Exchange{Cmd: lastCmd, Code: code, Text: m[4], Err: strings.Contains(m[1], "*")}
		if em := enhCode.FindStringSubmatch(m[4]); em != nil {
			e.Enh, e.Text = em[1], em[2]
		}
		out = append(out, e)
		lastCmd = "\x00" // a second reply to one line would be a protocol error; mark it
	}
	return out
}

// Find returns the first exchange whose command starts with prefix
// (case-insensitive).
func (r *SwaksResult) Find(prefix string) (Exchange, bool) {
	for _, e := range r.Exchanges {
		if len(e.Cmd) >= len(prefix) && strings.EqualFold(e.Cmd[:len(prefix)], prefix) {
			return e, true
		}
	}
	return Exchange{}, false
}

// CommandLine is the swaks command, quoted for a shell (to rerun by hand).
func (r *SwaksResult) CommandLine() string {
	parts := []string{"swaks"}
	for _, a := range r.Args {
		if a == "" || strings.ContainsAny(a, " '\"<>;&|$*?") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		parts = append(parts, a)
	}
	return strings.Join(parts, " ")
}

// AuthReply returns the server's final answer to AUTH: the first reply
// after the AUTH command that is not a 334 challenge (AUTH LOGIN sends the
// user and the password as separate lines).
func (r *SwaksResult) AuthReply() (Exchange, bool) {
	in := false
	for _, e := range r.Exchanges {
		if !in && len(e.Cmd) >= 4 && strings.EqualFold(e.Cmd[:4], "AUTH") {
			in = true
		}
		if in && e.Code != 334 {
			return e, true
		}
	}
	return Exchange{}, false
}

// Rcpts maps every recipient swaks tried to the server's reply.
func (r *SwaksResult) Rcpts() map[string]Exchange {
	m := map[string]Exchange{}
	for _, e := range r.Exchanges {
		if len(e.Cmd) > 8 && strings.EqualFold(e.Cmd[:8], "RCPT TO:") {
			addr := strings.Trim(strings.TrimSpace(e.Cmd[8:]), "<>")
			m[addr] = e
		}
	}
	return m
}

// RcptCodes counts the RCPT replies by code.
func (r *SwaksResult) RcptCodes() map[int]int {
	m := map[int]int{}
	for _, e := range r.Rcpts() {
		m[e.Code]++
	}
	return m
}

// Accepted tells whether the message was queued (250 after the final dot).
func (r *SwaksResult) Accepted() bool {
	e, ok := r.Find(".")
	return ok && e.Code == 250
}

// QueueID returns the id in Postfix's "250 2.0.0 Ok: queued as ID".
func (r *SwaksResult) QueueID() string {
	e, ok := r.Find(".")
	if !ok {
		return ""
	}
	if _, id, ok := strings.Cut(e.Text, "queued as "); ok {
		return strings.TrimSpace(id)
	}
	return ""
}

// FirstError returns the first reply swaks flagged as unexpected.
func (r *SwaksResult) FirstError() (Exchange, bool) {
	for _, e := range r.Exchanges {
		if e.Err {
			return e, true
		}
	}
	return Exchange{}, false
}

// Summary is a one-line account of the session for logs.
func (r *SwaksResult) Summary() string {
	var parts []string
	for _, e := range r.Exchanges {
		cmd := e.Cmd
		switch {
		case cmd == "":
			cmd = "banner"
		case strings.HasPrefix(strings.ToUpper(cmd), "AUTH"):
			if f := strings.Fields(cmd); len(f) > 2 {
				cmd = f[0] + " " + f[1]
			}
		case e.Code == 235 || e.Code == 535:
			cmd = "AUTH…" // the reply to AUTH LOGIN's password line
		case len(cmd) > 40:
			cmd = cmd[:40]
		}
		if e.Code >= 400 || cmd == "." || strings.HasPrefix(cmd, "RCPT") || (strings.HasPrefix(cmd, "AUTH") && e.Code != 334) {
			parts = append(parts, fmt.Sprintf("%s → %s", cmd, e))
		}
	}
	return fmt.Sprintf("exit=%d %s", r.ExitCode, strings.Join(parts, "; "))
}
