package daemon

import (
	"context"
	"errors"
	"time"

	"github.com/relaycap/relaycap/quota"
)

// burstActor is who the audit trail names for a burst suspension.
const burstActor = "relaycap (burst brake)"

// burstReason is the suspension's reason in the audit trail.
const burstReason = "hourly limit reached"

// errNotActive aborts a burst suspension of an account already stopped.
var errNotActive = errors.New("account is not active")

// burstBrake passes the mail path's events on and, with quota.burst_action
// suspend, suspends an account the moment its hourly limit refuses a
// recipient: the compromised-account brake, lifted by an operator's resume.
type burstBrake struct {
	next quota.Events // nil: no webhook
	d    *Daemon
}

func (b burstBrake) Committed(dec quota.Decision, n int64, now time.Time) {
	if b.next != nil {
		b.next.Committed(dec, n, now)
	}
}

func (b burstBrake) Refused(dec quota.Decision, now time.Time) {
	if b.next != nil {
		b.next.Refused(dec, now)
	}
	if dec.Verdict == quota.OverHourly {
		b.d.suspendForBurst(dec, now)
	}
}

// suspendForBurst suspends dec's account with reason "hourly limit
// reached". A login without an account gets a store record with the
// default daily limit, suspended; a file-managed account cannot be
// changed here (the file wins), which is logged. Failures are logged: the
// recipient is refused either way.
func (d *Daemon) suspendForBurst(dec quota.Decision, now time.Time) {
	log := d.log.With("component", "burst", "account", dec.Account.Name)
	if dec.Account.Source == quota.FromFile {
		log.Warn("burst_action suspend: a file-managed account cannot be suspended by relaycap; only deferred",
			"hourly_limit", dec.Hour.Limit, "fix", "set status: suspended in the config file if it is compromised")
		return
	}
	day := quota.DayOf(now, d.engine.Location())
	ch := quota.Change{Status: quota.StatusSuspended, Reason: burstReason, Actor: burstActor, Time: now, Day: day}
	if dec.Account.Source == quota.FromDefault {
		limit := dec.Account.DailyLimit
		ch.DailyLimit = &limit
	}
	apply := ch.Apply(dec.Account.Name)
	var entry quota.AuditEntry
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := d.accountsStore.UpdateAccount(ctx, dec.Account.Name, func(cur quota.AccountRecord, exists bool) (quota.AccountRecord, quota.AuditEntry, error) {
		if exists && cur.Status != quota.StatusActive {
			return cur, quota.AuditEntry{}, errNotActive // a concurrent refusal came first
		}
		next, e, err := apply(cur, exists)
		entry = e
		return next, e, err
	})
	switch {
	case errors.Is(err, errNotActive):
		return
	case err != nil:
		log.Error("burst_action suspend failed; the account is only deferred", "err", err)
		return
	}
	log.Warn("audit", "actor", burstActor, "action", entry.Action, "reason", burstReason,
		"hourly_limit", dec.Hour.Limit, "hour", dec.Hour.Window)
	d.statusEvent(entry)
}
