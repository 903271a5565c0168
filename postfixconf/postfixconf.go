// Package postfixconf renders the main.cf and master.cf lines that wire
// relaycap into Postfix: SASL through Dovecot, the policy service as the
// early gate, the milter as the last smtpd_milters entry, and the five
// customer listeners. The README, the packaged examples, `relaycap
// postfix-config` and the end-to-end sandbox all take their lines from
// here, so what is documented is what is tested.
package postfixconf

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/relaycap/relaycap/config"
	"github.com/relaycap/relaycap/sockets"
)

// DefaultQueueDirectory is Postfix's queue_directory on Debian and RHEL.
const DefaultQueueDirectory = "/var/spool/postfix"

// Param is one main.cf parameter with the comment lines above it.
type Param struct {
	Comment []string
	Name    string
	Value   string
}

// Service is one master.cf entry: a customer listener.
type Service struct {
	Comment []string
	Name    string   // "smtp", "2525", "smtps", …
	Options []string // -o name=value, without the -o
}

// RecipientLimit is smtpd_recipient_limit (Postfix's default), set
// explicitly in main.cf because the listeners' error limits must not be
// lower.
const RecipientLimit = 1000

// ErrorLimitOptions raise smtpd's error limits to RecipientLimit on a
// customer listener. Every refused recipient (450 4.7.1 over quota) is an
// smtpd "error": with the defaults, a message to 300 recipients with 200
// relays left sleeps a second per refusal from the 10th on
// (smtpd_soft_error_limit, smtpd_error_sleep_time) and is dropped at the
// 20th with "421 4.7.0 Error: too many errors" (smtpd_hard_error_limit),
// its 200 accepted recipients never queued. Postfix forgives the count once
// a message is queued (smtpd.c), so a limit of smtpd_recipient_limit lets
// every message reach DATA. The numbers are literal: "$smtpd_recipient_limit"
// in a master.cf -o expands to nothing unless main.cf sets it, and smtpd
// then dies with "bad numerical configuration" (measured, Postfix 3.7).
var ErrorLimitOptions = []string{
	fmt.Sprintf("smtpd_soft_error_limit=%d", RecipientLimit),
	fmt.Sprintf("smtpd_hard_error_limit=%d", RecipientLimit),
}

// AuthRateLimit is smtpd_client_auth_rate_limit: AUTH commands per client
// address, listener and anvil_rate_time_unit (60 s), successful or not.
// With the error limits raised, a failed AUTH no longer ends a session
// soon, so anvil bounds password guessing instead: past the limit AUTH is
// answered "450 4.7.1 Error: too many AUTH commands", whatever the password.
const AuthRateLimit = 20

// Options say where relaycap listens and where Postfix's queue is.
type Options struct {
	Milter, Policy string // relaycap's milter.listen and policy.listen
	QueueDirectory string // "" means DefaultQueueDirectory
}

// FromConfig takes the socket addresses from a loaded config.
func FromConfig(c *config.Config, queueDir string) Options {
	return Options{Milter: c.Milter.Listen, Policy: c.Policy.Listen, QueueDirectory: queueDir}
}

// ClientAddr turns a relaycap listen address into the name Postfix uses
// for it. A unix socket inside the queue directory is named relative to
// it, as Postfix names its private/… services: smtpd finds it whether it
// runs chrooted (Debian's default) or not. inside is false for a unix
// socket elsewhere, which a chrooted smtpd cannot reach.
func ClientAddr(listen, queueDir string) (addr string, inside bool, err error) {
	network, path, err := sockets.ParseListen(listen)
	if err != nil {
		return "", false, err
	}
	if network != "unix" {
		return listen, true, nil
	}
	if queueDir == "" {
		queueDir = DefaultQueueDirectory
	}
	rel, err := filepath.Rel(filepath.Clean(queueDir), filepath.Clean(path))
	if err != nil || rel == "." || strings.HasPrefix(rel, "..") {
		return "unix:" + path, false, nil
	}
	return "unix:" + rel, true, nil
}

// MainParams are the main.cf parameters for relaycap's sockets.
func MainParams(o Options) ([]Param, error) {
	milter, mOK, err := ClientAddr(o.Milter, o.QueueDirectory)
	if err != nil {
		return nil, fmt.Errorf("milter.listen: %w", err)
	}
	policy, pOK, err := ClientAddr(o.Policy, o.QueueDirectory)
	if err != nil {
		return nil, fmt.Errorf("policy.listen: %w", err)
	}
	outside := func(ok bool) []string {
		if ok {
			return nil
		}
		return []string{"WARNING: outside the queue directory: a chrooted smtpd cannot reach it"}
	}
	return []Param{
		{Comment: []string{"SASL through Dovecot (dovecot-auth.conf); only authenticated customers relay"},
			Name: "smtpd_sasl_type", Value: "dovecot"},
		{Name: "smtpd_sasl_path", Value: "private/auth"},
		{Name: "smtpd_relay_restrictions", Value: "permit_sasl_authenticated, reject"},
		{Comment: append([]string{"the early gate: over quota → 450 4.7.1, suspended/unprovisioned → 5.7.1"}, outside(pOK)...),
			Name: "smtpd_recipient_restrictions", Value: "check_policy_service " + policy},
		{Comment: append([]string{"the accounting authority: relaycap must be the LAST milter"}, outside(mOK)...),
			Name: "smtpd_milters", Value: milter},
		{Name: "non_smtpd_milters", Value: ""},
		{Comment: []string{"relaycap down or failing → 4xx, the client retries; never uncounted mail"},
			Name: "milter_default_action", Value: "tempfail"},
		{Name: "milter_protocol", Value: "6"},
		{Comment: []string{
			"The customer listeners (master.cf) raise smtpd_soft/hard_error_limit to",
			"this (keep them equal when you change it): each refused recipient counts",
			"as an error, and with the defaults (10/20) a message to more recipients",
			"than the account has left is dropped with \"421 4.7.0 Error: too many",
			"errors\"; Postfix forgives the count once a message is queued.",
		}, Name: "smtpd_recipient_limit", Value: fmt.Sprint(RecipientLimit)},
		{Comment: []string{
			"Failed AUTH counts toward the same limits, so password guessing is",
			"bounded here instead: anvil counts AUTH commands per client and listener",
			"per anvil_rate_time_unit (60s); past the limit AUTH gets 450 4.7.1",
			"whatever the password. Dovecot's auth_failure_delay slows each failure.",
			"Clients in smtpd_client_event_limit_exceptions ($mynetworks) are exempt.",
		}, Name: "smtpd_client_auth_rate_limit", Value: fmt.Sprint(AuthRateLimit)},
	}, nil
}

// Services are the five customer listeners: 25, 2525 and 10025 with
// STARTTLS, 465 and 10465 with implicit TLS (RFC 8314). AUTH needs TLS on
// every one of them.
func Services() []Service {
	starttls := []string{"smtpd_tls_security_level=may", "smtpd_tls_auth_only=yes"}
	implicit := []string{"smtpd_tls_wrappermode=yes"}
	svc := func(comment, name string, tlsOpts []string) Service {
		opts := append(append(append([]string(nil), tlsOpts...), "smtpd_sasl_auth_enable=yes"), ErrorLimitOptions...)
		var c []string
		if comment != "" {
			c = []string{comment}
		}
		return Service{Comment: c, Name: name, Options: opts}
	}
	return []Service{
		svc("STARTTLS listeners: AUTH only after STARTTLS (smtpd_tls_auth_only)", "smtp", starttls),
		svc("", "2525", starttls),
		svc("", "10025", starttls),
		svc("implicit TLS listeners (RFC 8314 submissions)", "smtps", implicit),
		svc("", "10465", implicit),
	}
}

// Line is the first line of a master.cf entry (chroot y: Debian's default;
// the sockets live inside the queue directory).
func (s Service) Line() string {
	return fmt.Sprintf("%-9s inet  n       -       y       -       -       smtpd", s.Name)
}

// Main renders the main.cf lines.
func Main(o Options) (string, error) {
	ps, err := MainParams(o)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, p := range ps {
		writeComment(&b, p.Comment)
		if p.Value == "" {
			fmt.Fprintf(&b, "%s =\n", p.Name)
		} else {
			fmt.Fprintf(&b, "%s = %s\n", p.Name, p.Value)
		}
	}
	return b.String(), nil
}

// Master renders the master.cf entries of the customer listeners.
func Master() string {
	var b strings.Builder
	for _, s := range Services() {
		writeComment(&b, s.Comment)
		b.WriteString(s.Line() + "\n")
		for _, o := range s.Options {
			fmt.Fprintf(&b, "  -o %s\n", o)
		}
	}
	b.WriteString(legacyPlaintext)
	return b.String()
}

// legacyPlaintext is the commented-out listener for clients that cannot
// speak TLS at all. RFC 8314 (section 3) wants TLS for every submission;
// the service relaycap replaces offered AUTH without it.
const legacyPlaintext = `# Legacy clients that cannot do TLS at all: replace the 10025 entry above
# with this one to accept AUTH without TLS on that port only (the service
# we replace allowed it: "if your client does not support it, you do not
# have to use it"). RISK: login and password cross the network in clear
# text; anyone on the path can read them and relay mail billed to that
# customer. RFC 8314 requires TLS for submission: open this only for
# customers that cannot be moved, and set disable_plaintext_auth = no in
# Dovecot (dovecot-auth.conf).
#10025     inet  n       -       y       -       -       smtpd
#  -o smtpd_tls_security_level=may
#  -o smtpd_tls_auth_only=no
#  -o smtpd_sasl_auth_enable=yes
#  -o smtpd_soft_error_limit=1000
#  -o smtpd_hard_error_limit=1000
`

// Postconf renders the same settings as postconf commands, for a shell:
// postconf -e for main.cf, postconf -M for each master.cf entry (it
// replaces an entry of the same name and type, e.g. Debian's "smtp inet").
func Postconf(o Options) (string, error) {
	ps, err := MainParams(o)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, p := range ps {
		fmt.Fprintf(&b, "postconf -e %s\n", shellQuote(p.Name+" = "+p.Value))
	}
	for _, s := range Services() {
		entry := strings.Join(strings.Fields(s.Line()), " ")
		for _, o := range s.Options {
			entry += " -o " + o
		}
		fmt.Fprintf(&b, "postconf -M %s\n", shellQuote(s.Name+"/inet="+entry))
	}
	return b.String(), nil
}

func writeComment(b *strings.Builder, lines []string) {
	for _, l := range lines {
		b.WriteString("# " + l + "\n")
	}
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
