//go:build e2e

package e2e_test

import (
	"context"
	"os"
	"testing"
	"time"
)

// TestRestart (scenario 5): with relaycap stopped Postfix answers 4xx
// (milter_default_action = tempfail, policy failure), nothing is delivered
// and nothing is counted; restarted on the same state_dir, relaycap still
// knows the day's usage: an account at 3/5 sends 2 more, then gets 450.
//
// It leaves relaycap running again, whatever happens.
func TestRestart(t *testing.T) {
	sc := begin(t, true)
	const account = "restart@example.com"
	l := sb.Listeners[2] // 10025-style STARTTLS

	r := sc.send(t, as(account, l, rcpts("restart", 3)))
	if !r.Accepted() {
		sc.fatalf(t, "first message not queued: %s", r.Summary())
	}
	if d := sc.lastDecision(t, account, 1); d.Used != 3 || d.Limit != 5 {
		sc.fatalf(t, "after 3 recipients: used=%d limit=%d, want 3/5: %s", d.Used, d.Limit, d.Line)
	}

	oldPID := sb.Relaycap.PID()
	t.Cleanup(func() { // whatever failed below, the next scenarios need the daemon
		if sb.Relaycap.PID() == 0 {
			if err := sb.Relaycap.Start(context.Background()); err != nil {
				sc.errorf(t, "restarting relaycap in cleanup: %v", err)
			}
		}
	})
	t0 := time.Now()
	if err := sb.Relaycap.Stop(); err != nil {
		sc.errorf(t, "relaycap did not exit cleanly on SIGTERM: %v", err)
	}
	t.Logf("relaycap (pid %d) stopped by SIGTERM in %v", oldPID, time.Since(t0).Round(time.Millisecond))
	for _, p := range []string{sb.Relaycap.MilterSock, sb.Relaycap.PolicySock} {
		if _, err := os.Stat(p); err == nil {
			sc.errorf(t, "socket %s left behind after SIGTERM", p)
		}
	}

	// Daemon down: a 4xx somewhere (AUTH, MAIL or RCPT), never a queued message.
	for _, li := range []int{2, 3} {
		r = sc.send(t, as(account, sb.Listeners[li], rcpts("restart-down", 2)))
		e, ok := r.FirstError()
		if !ok || e.Code/100 != 4 {
			sc.errorf(t, "relaycap down, %v: first error %v (found=%v), want a 4xx: %s", sb.Listeners[li], e, ok, r.Summary())
		}
		if r.Accepted() {
			sc.errorf(t, "relaycap down but the message was queued: %s", r.Summary())
		}
	}
	sc.settle(t)
	if _, n := delivered(account); n != 3 {
		sc.errorf(t, "with relaycap down the sink holds %d deliveries from %s, want still 3", n, account)
	}

	t0 = time.Now()
	if err := sb.Relaycap.Start(sc.ctx); err != nil {
		sc.fatalf(t, "restart on the same state_dir: %v", err)
	}
	t.Logf("relaycap restarted (pid %d) in %v", sb.Relaycap.PID(), time.Since(t0).Round(time.Millisecond))

	to := rcpts("restart-after", 3)
	r = sc.send(t, as(account, l, to))
	sc.wantReply(t, "RCPT 1 after restart", r.Rcpts()[to[0]], 250, "2.1.5")
	sc.wantReply(t, "RCPT 2 after restart", r.Rcpts()[to[1]], 250, "2.1.5")
	sc.wantReply(t, "RCPT 3 after restart (over 5)", r.Rcpts()[to[2]], 450, "4.7.1")
	if !r.Accepted() {
		sc.fatalf(t, "message after restart not queued: %s", r.Summary())
	}
	d := sc.lastDecision(t, account, 2)
	if d.Used != 5 || d.Limit != 5 || d.Accepted != 2 {
		sc.errorf(t, "after restart: accepted=%d used=%d limit=%d, want 2 and 5/5: %s", d.Accepted, d.Used, d.Limit, d.Line)
	}
	sc.settle(t)
	got, n := delivered(account)
	if n != 5 || got[to[0]] != 1 || got[to[1]] != 1 || got[to[2]] != 0 {
		sc.errorf(t, "sink: %d deliveries from %s (want 5): %v", n, account, got)
	}
}
