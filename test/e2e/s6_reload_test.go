//go:build e2e

package e2e_test

import (
	"context"
	"regexp"
	"testing"
	"time"
)

// reloadLine and reloadFailed match what the daemon logs after a SIGHUP:
// the new config applied, or kept out.
var (
	reloadLine   = regexp.MustCompile(`msg="config reloaded"`)
	reloadFailed = regexp.MustCompile(`msg="reload failed`)
)

// TestReloadRaisesLimit (scenario 6): an account at its limit gets a higher
// limit in the config file; after SIGHUP (no restart, same PID) it sends
// again at once.
func TestReloadRaisesLimit(t *testing.T) {
	sc := begin(t, true)
	const account = "reload@example.com"
	l := sb.Listeners[3] // 465-style implicit TLS

	r := sc.send(t, as(account, l, rcpts("reload", 2)))
	if !r.Accepted() {
		sc.fatalf(t, "first message not queued: %s", r.Summary())
	}
	to := rcpts("reload-over", 1)
	r = sc.send(t, as(account, l, to))
	sc.wantReply(t, "RCPT at the limit", r.Rcpts()[to[0]], 450, "4.7.1")

	pid := sb.Relaycap.PID()
	off := sb.Relaycap.LogSize()
	if err := sb.SetLimit(account, 4); err != nil {
		sc.fatalf(t, "%v", err)
	}
	if err := sb.Relaycap.Reload(); err != nil {
		sc.fatalf(t, "%v", err)
	}
	// Wait for the daemon to say it reloaded; a reload is not a restart.
	ctx, cancel := context.WithTimeout(sc.ctx, 10*time.Second)
	defer cancel()
	for !reloadLine.MatchString(sb.Relaycap.LogSince(off)) {
		if reloadFailed.MatchString(sb.Relaycap.LogSince(off)) {
			sc.fatalf(t, "relaycap refused the reload; log since:\n%s", sb.Relaycap.LogSince(off))
		}
		select {
		case <-ctx.Done():
			sc.fatalf(t, "no reload log line within 10s of SIGHUP; log since:\n%s", sb.Relaycap.LogSince(off))
		case <-sb.Relaycap.Exited():
			sc.fatalf(t, "relaycap exited on SIGHUP; log since:\n%s", sb.Relaycap.LogSince(off))
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Logf("after SIGHUP relaycap logged:\n%s", tailString(sb.Relaycap.LogSince(off), 5))

	to = rcpts("reload-raised", 2)
	r = sc.send(t, as(account, l, to))
	for _, rc := range to {
		sc.wantReply(t, "RCPT after reload "+rc, r.Rcpts()[rc], 250, "2.1.5")
	}
	if !r.Accepted() {
		sc.fatalf(t, "message after reload not queued: %s", r.Summary())
	}
	if got := sb.Relaycap.PID(); got != pid {
		sc.errorf(t, "relaycap PID changed %d → %d: restarted, not reloaded", pid, got)
	}
	d := sc.lastDecision(t, account, 2)
	if d.Used != 4 || d.Limit != 4 {
		sc.errorf(t, "after reload: used=%d limit=%d, want 4/4: %s", d.Used, d.Limit, d.Line)
	}
	sc.settle(t)
	if _, n := delivered(account); n != 4 {
		sc.errorf(t, "sink holds %d deliveries from %s, want 4", n, account)
	}
}
