package notify

import (
	"strconv"
	"time"

	"github.com/relaycap/relaycap/quota"
)

// MailEvents turns the mail path's decisions into events: a crossed
// threshold, the first quota refusal of a day. Each is written once per
// account and day through the outbox's once keys, so several hosts on one
// store send one event between them.
type MailEvents struct {
	Notifier   *Notifier
	Thresholds []int // percent of the daily limit
}

var _ quota.Events = MailEvents{}

// Committed emits an event for each threshold the commit of n relays took
// the day's usage past.
func (m MailEvents) Committed(d quota.Decision, n int64, now time.Time) {
	// n may span two days (a message across midnight); the once key makes
	// a threshold already passed on d.Day harmless.
	before := max(d.Used-n, 0)
	for _, p := range Crossed(before, d.Used, d.Limit, m.Thresholds) {
		ev := m.event(TypeThreshold, d, now)
		ev.Percent = p
		m.Notifier.Emit(ev, "threshold/"+d.Account.Name+"/"+string(d.Day)+"/"+strconv.Itoa(p))
	}
}

// Refused emits the first refusal of the day for quota, and the first of
// each clock hour for the hourly limit (the burst brake engaged).
func (m MailEvents) Refused(d quota.Decision, now time.Time) {
	switch d.Verdict {
	case quota.OverQuota:
		m.Notifier.Emit(m.event(TypeQuotaRefused, d, now), "refused/"+d.Account.Name+"/"+string(d.Day))
	case quota.OverHourly:
		ev := m.event(TypeBurst, d, now)
		resets := d.Hour.ResetAt.UTC()
		ev.Hour = d.Hour.ResetAt.Add(-time.Hour).Format(time.RFC3339)
		ev.Used, ev.Limit, ev.ResetsAt = d.Hour.Used+d.Hour.Reserved, d.Hour.Limit, &resets
		m.Notifier.Emit(ev, "burst/"+d.Account.Name+"/"+string(d.Hour.Window))
	}
}

func (m MailEvents) event(t Type, d quota.Decision, now time.Time) Event {
	resets := d.ResetAt.UTC()
	return Event{
		ID: NewID(now), Type: t, Time: now.UTC(), Account: d.Account.Name,
		Day: string(d.Day), Used: d.Used, Limit: d.Limit, ResetsAt: &resets,
	}
}
