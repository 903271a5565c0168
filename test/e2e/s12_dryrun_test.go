//go:build e2e

package e2e_test

import (
	"context"
	"time"

	"testing"

	"github.com/relaycap/relaycap/notify"
	"github.com/relaycap/relaycap/test/e2e"
)

// TestDryRun (scenario 12): an account in dry run with a daily limit of 2
// sends 5 recipients through the real Postfix. Every RCPT gets 250, the
// sink gets all 5, the decision line says used=5 limit=2 would_refuse=3,
// and the webhook receiver on loopback gets the signed 100 % threshold
// event of the day.
func TestDryRun(t *testing.T) {
	sc := begin(t, true)
	const account = "dryrun@example.com"
	to := rcpts("dryrun", 5)
	r := sc.send(t, as(account, sb.Listeners[1], to))
	for _, rc := range to {
		sc.wantReply(t, "dry-run RCPT "+rc, r.Rcpts()[rc], 250, "2.1.5")
	}
	if !r.Accepted() {
		sc.fatalf(t, "dry-run message not queued: %s", r.Summary())
	}
	d := sc.lastDecision(t, account, 1)
	if f := e2e.ParseLogfmt(d.Line); d.Accepted != 5 || d.Used != 5 || d.Limit != 2 || f["would_refuse"] != "3" || f["result"] != "accept" {
		sc.errorf(t, "decision line: %s", d.Line)
	}
	sc.settle(t)
	got, n := delivered(account)
	if n != 5 {
		sc.errorf(t, "sink holds %d recipient deliveries from %s, want all 5", n, account)
	}
	for _, rc := range to {
		if got[rc] != 1 {
			sc.errorf(t, "recipient %s delivered %d times, want 1", rc, got[rc])
		}
	}
	ctx, cancel := context.WithTimeout(sc.ctx, 30*time.Second)
	defer cancel()
	ev, err := sb.Webhook.WaitFor(ctx, func(ev notify.Event) bool {
		return ev.Account == account && ev.Type == notify.TypeThreshold && ev.Percent == 100
	})
	if err != nil {
		sc.fatalf(t, "%v", err)
	}
	if ev.Used != 5 || ev.Limit != 2 || ev.Day == "" || ev.ResetsAt == nil {
		sc.errorf(t, "threshold event: %+v", ev)
	}
	_, bad := sb.Webhook.Events()
	if len(bad) > 0 {
		sc.errorf(t, "the receiver refused requests: %v", bad)
	}
	t.Logf("relaycap: %s", d.Line)
}
