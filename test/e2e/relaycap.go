//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// BinEnv names an already built relaycap binary to use instead of building
// one from the tree.
const BinEnv = "RELAYCAP_E2E_BIN"

// ModuleRoot returns the folder holding the go.mod of the current module.
func ModuleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("not inside a Go module")
	}
	return filepath.Dir(gomod), nil
}

// BuildRelaycap builds ./cmd/relaycap of the current tree into dir and
// returns the binary's path ($RELAYCAP_E2E_BIN wins when set).
func BuildRelaycap(ctx context.Context, dir string) (string, error) {
	if bin := os.Getenv(BinEnv); bin != "" {
		return filepath.Abs(bin)
	}
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "relaycap")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/relaycap")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/relaycap: %w\n%s", err, out)
	}
	return bin, nil
}

// Relaycap is the daemon process under test.
type Relaycap struct {
	Bin        string
	ConfigPath string
	LogPath    string
	MilterSock string
	PolicySock string

	mu      sync.Mutex
	cmd     *exec.Cmd
	done    chan struct{}
	waitErr error
}

// Start runs `relaycap serve --config FILE`, stderr appended to LogPath,
// and waits until both sockets accept connections.
func (r *Relaycap) Start(ctx context.Context) error {
	r.mu.Lock()
	if r.cmd != nil {
		r.mu.Unlock()
		return errors.New("relaycap already running")
	}
	logf, err := os.OpenFile(r.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		r.mu.Unlock()
		return err
	}
	fmt.Fprintf(logf, "### e2e: starting %s serve --config %s at %s\n", r.Bin, r.ConfigPath, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(r.Bin, "serve", "--config", r.ConfigPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	// If the driver dies without cleaning up, the daemon goes with it; in
	// its own process group, a terminal's Ctrl-C reaches only the driver,
	// which then stops the daemon itself with SIGTERM.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM, Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		r.mu.Unlock()
		return fmt.Errorf("start relaycap: %w", err)
	}
	done := make(chan struct{})
	r.cmd, r.done = cmd, done
	go func() {
		err := cmd.Wait()
		logf.Close()
		r.mu.Lock()
		r.waitErr = err
		r.mu.Unlock()
		close(done)
	}()
	r.mu.Unlock()

	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for _, sock := range []string{r.MilterSock, r.PolicySock} {
		if err := waitDial(ctx, "unix", sock, done); err != nil {
			r.Stop()
			return fmt.Errorf("relaycap not ready on %s: %w", sock, err)
		}
	}
	return nil
}

// PID returns the running daemon's PID, 0 when it is not running.
func (r *Relaycap) PID() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil {
		return 0
	}
	return r.cmd.Process.Pid
}

// Exited returns a channel closed when the current process has exited.
func (r *Relaycap) Exited() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done == nil {
		c := make(chan struct{})
		close(c)
		return c
	}
	return r.done
}

// Reload sends SIGHUP.
func (r *Relaycap) Reload() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil {
		return errors.New("relaycap not running")
	}
	return r.cmd.Process.Signal(syscall.SIGHUP)
}

// Stop sends SIGTERM and waits for the exit (SIGKILL after 20 s). It
// returns the process's exit error, if any, so a test can see that the
// daemon did not exit cleanly.
func (r *Relaycap) Stop() error {
	r.mu.Lock()
	cmd, done := r.cmd, r.done
	r.mu.Unlock()
	if cmd == nil {
		return nil
	}
	cmd.Process.Signal(syscall.SIGTERM)
	var err error
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		<-done
		err = errors.New("relaycap ignored SIGTERM for 20s; killed")
	}
	r.mu.Lock()
	if err == nil {
		err = r.waitErr
	}
	r.cmd, r.done = nil, nil
	r.mu.Unlock()
	return err
}

// Log returns the daemon's log so far (all runs of it).
func (r *Relaycap) Log() string {
	b, _ := os.ReadFile(r.LogPath)
	return string(b)
}

// LogSize is the current length of the log, an offset for LogSince.
func (r *Relaycap) LogSize() int64 {
	st, err := os.Stat(r.LogPath)
	if err != nil {
		return 0
	}
	return st.Size()
}

// LogSince returns the log from byte offset off on.
func (r *Relaycap) LogSince(off int64) string {
	b, _ := os.ReadFile(r.LogPath)
	if off > int64(len(b)) {
		return ""
	}
	return string(b[off:])
}

// Decision is one "msg=decision" line of the daemon's log.
type Decision struct {
	Account  string
	QueueID  string
	Accepted int
	Refused  int
	Used     int
	Limit    int
	Result   string
	Fields   map[string]string
	Line     string
}

// Decisions parses every decision line of the log, optionally only those of
// one account ("" = all).
func (r *Relaycap) Decisions(account string) []Decision {
	return ParseDecisions(r.Log(), account)
}

// WaitDecisions waits until the log holds at least n decision lines for the
// account and returns them.
func (r *Relaycap) WaitDecisions(ctx context.Context, account string, n int) ([]Decision, error) {
	for {
		ds := r.Decisions(account)
		if len(ds) >= n {
			return ds, nil
		}
		select {
		case <-ctx.Done():
			return ds, fmt.Errorf("relaycap logged %d decision lines for %s, want %d: %w", len(ds), account, n, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// ParseDecisions extracts the decision lines from a slog text log. Field
// order is not relied upon.
func ParseDecisions(log, account string) []Decision {
	var out []Decision
	for _, line := range strings.Split(log, "\n") {
		if !strings.Contains(line, "msg=decision") {
			continue
		}
		f := ParseLogfmt(line)
		if f["msg"] != "decision" || (account != "" && !strings.EqualFold(f["account"], account)) {
			continue
		}
		atoi := func(k string) int { n, _ := strconv.Atoi(f[k]); return n }
		out = append(out, Decision{
			Account: f["account"], QueueID: f["queue_id"], Result: f["result"],
			Accepted: atoi("accepted"), Refused: atoi("refused"), Used: atoi("used"), Limit: atoi("limit"),
			Fields: f, Line: line,
		})
	}
	return out
}

// ParseLogfmt splits one slog text line into key=value pairs; values may be
// double-quoted with Go escapes.
func ParseLogfmt(line string) map[string]string {
	f := map[string]string{}
	i := 0
	for i < len(line) {
		for i < len(line) && line[i] == ' ' {
			i++
		}
		start := i
		for i < len(line) && line[i] != '=' && line[i] != ' ' {
			i++
		}
		if i >= len(line) || line[i] == ' ' {
			continue // a bare word, not key=value
		}
		key := line[start:i]
		i++ // '='
		var val string
		if i < len(line) && line[i] == '"' {
			j := i + 1
			for j < len(line) && line[j] != '"' {
				if line[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(line) {
				j = len(line) - 1
			}
			if uq, err := strconv.Unquote(line[i : j+1]); err == nil {
				val = uq
			} else {
				val = line[i+1 : j]
			}
			i = j + 1
		} else {
			j := strings.IndexByte(line[i:], ' ')
			if j < 0 {
				j = len(line) - i
			}
			val = line[i : i+j]
			i += j
		}
		f[key] = val
	}
	return f
}

// AskPolicy sends one RCPT-stage request for login to relaycap's policy
// service, as Postfix's check_policy_service does (SMTPD_POLICY_README:
// name=value lines ending in an empty line), and returns the action. The
// policy service only checks; it never counts.
func (r *Relaycap) AskPolicy(login string) (string, error) {
	c, err := net.DialTimeout("unix", r.PolicySock, 5*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		return "", err
	}
	req := "request=smtpd_access_policy\nprotocol_state=RCPT\nprotocol_name=ESMTP\n" +
		"client_address=127.0.0.1\nsender=probe@e2e.test\nrecipient=probe@remote.example\n" +
		"sasl_method=PLAIN\nsasl_username=" + login + "\n\n"
	if _, err := io.WriteString(c, req); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("policy answer: %w", err)
	}
	return strings.TrimPrefix(strings.TrimSpace(line), "action="), nil
}

// waitDial waits until a connection to addr succeeds, the process behind
// it exits (done closed) or ctx ends.
func waitDial(ctx context.Context, network, addr string, done <-chan struct{}) error {
	var last error
	for {
		c, err := net.DialTimeout(network, addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), last)
		case <-done:
			return fmt.Errorf("process exited (last dial: %v)", last)
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	s = strings.TrimRight(s, "\n")
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// TailFile returns the last n lines of a file (or why it can't).
func TailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	return tail(string(bytes.ToValidUTF8(b, []byte("?"))), n)
}
