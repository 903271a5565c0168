//go:build e2e

package e2e_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/relaycap/relaycap/notify"
)

// TestHourlyBrake (scenario 14): an account with hourly_limit 3 (and a
// daily limit of 100) sends 5 recipients through the real Postfix: 3 get
// 250, 2 get 450 4.7.1 naming the hour the brake lifts, the sink gets
// the 3, and the webhook receiver gets the signed burst event.
func TestHourlyBrake(t *testing.T) {
	sc := begin(t, true)
	const account = "hourly@example.com"
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		sc.fatalf(t, "%v", err)
	}
	// The hour the brake lifts, as the reply writes it; the send may
	// straddle an hour's end, so either of two.
	lifts := func(t time.Time) string {
		return t.In(ny).Truncate(time.Hour).Add(time.Hour).In(ny).Format("15:04 MST")
	}
	before := lifts(time.Now())
	to := rcpts("hourly", 5)
	r := sc.send(t, as(account, sb.Listeners[0], to))
	after := lifts(time.Now())
	replies := r.Rcpts()
	for i, rc := range to {
		e := replies[rc]
		if i < 3 {
			sc.wantReply(t, "RCPT "+rc, e, 250, "2.1.5")
			continue
		}
		sc.wantReply(t, "RCPT "+rc, e, 450, "4.7.1")
		if !strings.Contains(e.Text, "hourly relay limit of 3 reached; try again after "+before) &&
			!strings.Contains(e.Text, "hourly relay limit of 3 reached; try again after "+after) {
			sc.errorf(t, "RCPT %s: %q, want the hourly limit and the hour (%s)", rc, e.Text, before)
		}
	}
	if !r.Accepted() {
		sc.fatalf(t, "message not queued: %s", r.Summary())
	}
	d := sc.lastDecision(t, account, 1)
	if d.Accepted != 3 {
		sc.errorf(t, "decision line: %s", d.Line)
	}
	sc.settle(t)
	if _, n := delivered(account); n != 3 {
		sc.errorf(t, "sink holds %d recipient deliveries from %s, want 3", n, account)
	}
	ctx, cancel := context.WithTimeout(sc.ctx, 30*time.Second)
	defer cancel()
	ev, err := sb.Webhook.WaitFor(ctx, func(ev notify.Event) bool { return ev.Account == account && ev.Type == notify.TypeBurst })
	if err != nil {
		sc.fatalf(t, "%v", err)
	}
	if ev.Limit != 3 || ev.Used != 3 || ev.Hour == "" || ev.ResetsAt == nil {
		sc.errorf(t, "burst event: %+v", ev)
	}
	if _, bad := sb.Webhook.Events(); len(bad) > 0 {
		sc.errorf(t, "the receiver refused requests: %v", bad)
	}
}
