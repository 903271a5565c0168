//go:build e2e

package e2e_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestProvisioningAndAbuse (scenario 8): the account's whole life through
// the CLI and the admin socket of the running daemon, no reload. It is
// created, sends up to its limit and is refused there, buys more (a retry
// of the purchase adds nothing), sends again, is reported with a message
// the sink received (`abuse report --suspend`), and is then refused with
// 5.7.1.
func TestProvisioningAndAbuse(t *testing.T) {
	sc := begin(t, true)
	const account = "billing@example.com"
	l := sb.Listeners[1] // 2525 with STARTTLS

	// Dovecot knows the login, relaycap does not yet: 5.7.1 as in scenario 4.
	to := rcpts("billing-before", 1)
	r := sc.send(t, as(account, l, to))
	sc.wantReply(t, "RCPT before the account exists", r.Rcpts()[to[0]], 554, "5.7.1")

	sc.cli(t, 0, []string{"daily limit:  3"}, "account", "set", account, "--daily-limit", "3", "--note", "e2e customer")

	to = rcpts("billing", 2)
	if r = sc.send(t, as(account, l, to)); !r.Accepted() {
		sc.fatalf(t, "first message not queued: %s", r.Summary())
	}
	to = rcpts("billing-limit", 2)
	r = sc.send(t, as(account, l, to))
	sc.wantReply(t, "3rd RCPT", r.Rcpts()[to[0]], 250, "2.1.5")
	sc.wantReply(t, "4th RCPT, over the limit", r.Rcpts()[to[1]], 450, "4.7.1")
	if !r.Accepted() {
		sc.fatalf(t, "message with one accepted recipient not queued: %s", r.Summary())
	}

	sc.cli(t, 0, []string{"daily limit 5"}, "account", "purchase", account, "2", "--purchase-id", "e2e-order-1")
	sc.cli(t, 0, []string{"replay: already recorded, nothing added", "daily limit 5"}, "account", "purchase", account, "2", "--purchase-id", "e2e-order-1")

	to = rcpts("billing-bought", 2)
	r = sc.send(t, as(account, l, to))
	for _, rc := range to {
		sc.wantReply(t, "RCPT after the purchase "+rc, r.Rcpts()[rc], 250, "2.1.5")
	}
	if !r.Accepted() {
		sc.fatalf(t, "message after the purchase not queued: %s", r.Summary())
	}
	out := sc.cli(t, 0, nil, "usage", account, "--json")
	if !strings.Contains(out, `"used": 5`) || !strings.Contains(out, `"limit": 5`) {
		sc.errorf(t, "usage after 5 relays of 5:\n%s", out)
	}
	sc.settle(t)
	if _, n := delivered(account); n != 5 {
		sc.errorf(t, "sink holds %d deliveries from %s, want 5", n, account)
	}

	// The abuse desk gets a complaint quoting the last message.
	ms := sb.Sink.ByMessageID(r.MessageID)
	if len(ms) == 0 {
		sc.fatalf(t, "the sink did not receive %s", r.MessageID)
	}
	qids := sb.QueueIDs(r.MessageID)
	complaint := "From: abuse@remote.example\r\nTo: abuse@relay.e2e.test\r\nSubject: spam\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=zz\r\n\r\n--zz\r\nContent-Type: text/plain\r\n\r\nYour customer spammed us.\r\n" +
		"--zz\r\nContent-Type: message/rfc822\r\n\r\n" + string(ms[0].Data) + "\r\n--zz--\r\n"
	file := filepath.Join(t.TempDir(), "complaint.eml")
	if err := os.WriteFile(file, []byte(complaint), 0o644); err != nil {
		sc.fatalf(t, "%v", err)
	}
	want := []string{"account:     " + account, "suspend " + account + ": now suspended"}
	if len(qids) == 1 {
		want = append(want, "queue id:    "+qids[0])
	} else {
		sc.errorf(t, "maillog names %d queue ids for %s: %v", len(qids), r.MessageID, qids)
	}
	sc.cli(t, 0, want, "abuse", "report", file, "--suspend", "--reason", "e2e spam complaint")

	to = rcpts("billing-suspended", 1)
	r = sc.send(t, as(account, l, to))
	sc.wantReply(t, "RCPT after the suspension", r.Rcpts()[to[0]], 554, "5.7.1")
	if !strings.Contains(r.Rcpts()[to[0]].Text, "Account "+account+" is suspended") {
		sc.errorf(t, "refusal %q does not say the account is suspended", r.Rcpts()[to[0]].String())
	}
	out = sc.cli(t, 0, []string{"status:       suspended"}, "account", "show", account)
	if !strings.Contains(out, "e2e spam complaint (abuse report: queue id ") {
		sc.errorf(t, "the audit does not record the complaint's reason and queue id:\n%s", out)
	}
	if !strings.Contains(sb.Relaycap.Log(), `msg=audit component=admin account=`+account) {
		sc.errorf(t, "relaycap logged no audit line for %s", account)
	}
}

// cli runs the built relaycap against the sandbox daemon's config and
// checks its exit code and output.
func (sc *scenario) cli(t *testing.T, wantCode int, want []string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(sc.ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, sb.Relaycap.Bin, append(args, "--config", sb.RelaycapConfigPath())...)
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		sc.fatalf(t, "relaycap %s: %v", strings.Join(args, " "), err)
	}
	if code != wantCode {
		sc.fatalf(t, "relaycap %s: exit %d, want %d\n%s", strings.Join(args, " "), code, wantCode, out)
	}
	for _, w := range want {
		if !strings.Contains(string(out), w) {
			sc.errorf(t, "relaycap %s: output lacks %q:\n%s", strings.Join(args, " "), w, out)
		}
	}
	t.Logf("relaycap %s:\n%s", strings.Join(args, " "), out)
	return string(out)
}
