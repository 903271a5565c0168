//go:build e2e

package e2e_test

import (
	"testing"
)

// TestExactAccounting (scenario 2): an account with limit 10 sends 4 + 4 +
// 4 recipients. The third message goes out to its first 2 recipients, the
// other 2 get 450 4.7.1 at RCPT; the sink holds exactly 10 deliveries and
// relaycap's decision lines say used=10 limit=10. A fourth message, all
// over quota, is not sent at all.
//
// swaks goes on to DATA when at least one RCPT was accepted (its
// smtp_rcpt_callback quits only when every RCPT failed, exit code 24), so
// a partly refused message is sent to its accepted recipients.
func TestExactAccounting(t *testing.T) {
	sc := begin(t, true)
	const account = "exact@example.com"
	l := sb.Listeners[1] // 2525-style STARTTLS

	var want []string // recipients that must be delivered
	for i, accepted := range []int{4, 4, 2} {
		to := rcpts("exact", 4)
		r := sc.send(t, as(account, l, to))
		replies := r.Rcpts()
		for j, rc := range to {
			e := replies[rc]
			if j < accepted {
				sc.wantReply(t, "message "+itoa(i+1)+" RCPT "+rc, e, 250, "2.1.5")
				want = append(want, rc)
			} else {
				sc.wantReply(t, "message "+itoa(i+1)+" RCPT "+rc, e, 450, "4.7.1")
			}
		}
		if !r.Accepted() {
			sc.fatalf(t, "message %d not queued: %s", i+1, r.Summary())
		}
		d := sc.lastDecision(t, account, i+1)
		if d.Accepted != accepted {
			sc.errorf(t, "message %d: decision accepted=%d, want %d: %s", i+1, d.Accepted, accepted, d.Line)
		}
		if d.QueueID != r.QueueID() {
			sc.errorf(t, "message %d: decision queue_id=%q, Postfix said %q", i+1, d.QueueID, r.QueueID())
		}
	}

	// At the limit: every recipient deferred, swaks gives up before DATA.
	to := rcpts("exact-over", 2)
	r := sc.send(t, as(account, l, to))
	for _, rc := range to {
		sc.wantReply(t, "over-limit RCPT "+rc, r.Rcpts()[rc], 450, "4.7.1")
	}
	if r.Accepted() || r.ExitCode != 24 {
		sc.errorf(t, "over-limit message: exit %d, want 24 (no RCPT accepted) and no DATA: %s", r.ExitCode, r.Summary())
	}

	sc.settle(t)
	got, n := delivered(account)
	if n != 10 {
		sc.errorf(t, "sink holds %d recipient deliveries from %s, want exactly 10", n, account)
	}
	for _, rc := range want {
		if got[rc] != 1 {
			sc.errorf(t, "recipient %s delivered %d times, want 1", rc, got[rc])
		}
	}
	if len(sb.Sink.From(account)) != 3 {
		sc.errorf(t, "sink holds %d messages from %s, want 3", len(sb.Sink.From(account)), account)
	}
	last := sc.lastDecision(t, account, 3)
	if last.Used != 10 || last.Limit != 10 {
		sc.errorf(t, "relaycap reports used=%d limit=%d, want 10/10: %s", last.Used, last.Limit, last.Line)
	}
	t.Logf("relaycap: %s", last.Line)
}
