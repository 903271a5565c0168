package notify_test

import (
	"testing"
	"time"

	"github.com/relaycap/relaycap/notify"
	"github.com/relaycap/relaycap/quota"
)

// BenchmarkMailEventsCommitted is what a webhook adds to each committed
// message that crosses no threshold (all but a few a day per account):
// the milter transaction benchmark's difference with a webhook, without
// its fsync noise.
func BenchmarkMailEventsCommitted(b *testing.B) {
	m := notify.MailEvents{Notifier: nil, Thresholds: []int{10, 20, 30, 40, 50, 60, 70, 80, 90, 100}}
	d := quota.Decision{Verdict: quota.Allowed, Account: quota.Account{Name: "alice"}, Day: "2026-11-27",
		Used: 100, Limit: 100000000, ResetAt: time.Now()}
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		m.Committed(d, 1, now)
	}
}
