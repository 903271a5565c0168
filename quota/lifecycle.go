package quota

import (
	"errors"
	"fmt"
	"time"
)

// Change is a requested change of a store-managed account, as an admin
// makes it. Nil fields stay as they are.
type Change struct {
	DailyLimit  *int64
	HourlyLimit *int64 // 0 takes the default hourly limit
	DryRun      *bool
	Note        *string
	Status      Status // "" keeps the status
	Reason      string
	QueueIDs    []string // what the change is about, for the audit (a complaint suspension)
	Actor       string
	Time        time.Time
	Day         Day // the local day of Time, for the audit's top-up
}

// ErrNeedsLimit refuses to create an account without a daily limit.
var ErrNeedsLimit = errors.New("a new account needs a daily limit")

// Apply returns c as an Accounts.UpdateAccount change function. It creates
// the account (active unless c says otherwise) if there is none. A
// terminated account is final: any change of it fails with ErrTerminated,
// and it can only be deleted.
func (c Change) Apply(name string) func(AccountRecord, bool) (AccountRecord, AuditEntry, error) {
	return func(cur AccountRecord, exists bool) (AccountRecord, AuditEntry, error) {
		next := cur
		entry := AuditEntry{Time: c.Time, Account: name, Actor: c.Actor, Reason: c.Reason, QueueIDs: c.QueueIDs}
		if !exists {
			if c.DailyLimit == nil {
				return cur, entry, ErrNeedsLimit
			}
			next = AccountRecord{Name: name, Status: StatusActive, Created: c.Time}
			entry.Action = ActionCreate
		} else {
			if cur.Status == StatusTerminated {
				return cur, entry, ErrTerminated
			}
			before := StateOf(cur, c.Day)
			entry.Before = &before
			entry.Action = statusAction(cur.Status, c.Status)
		}
		if c.DailyLimit != nil {
			next.DailyLimit = *c.DailyLimit
		}
		if c.HourlyLimit != nil {
			if *c.HourlyLimit > MaxLimit {
				return cur, entry, fmt.Errorf("%w: hourly limit %d", ErrLimitTooHigh, *c.HourlyLimit)
			}
			next.HourlyLimit = *c.HourlyLimit
		}
		if c.DryRun != nil {
			next.DryRun = *c.DryRun
		}
		if c.Note != nil {
			next.Note = *c.Note
		}
		if c.Status != "" {
			next.Status = c.Status
		}
		if c.DailyLimit != nil && !withinLimit(next.DailyLimit, next.TopUp(c.Day)) {
			return cur, entry, fmt.Errorf("%w: %d (+%d on %s)", ErrLimitTooHigh, next.DailyLimit, next.TopUp(c.Day), c.Day)
		}
		next.Updated = c.Time
		after := StateOf(next, c.Day)
		entry.After = &after
		return next, entry, nil
	}
}

// statusAction names a change by its effect on the status.
func statusAction(from, to Status) Action {
	switch {
	case to == "" || to == from:
		return ActionUpdate
	case to == StatusSuspended:
		return ActionSuspend
	case to == StatusTerminated:
		return ActionTerminate
	default:
		return ActionResume
	}
}

// Deletion returns the Accounts.DeleteAccount check for an admin's delete:
// any account may be deleted, a terminated one included.
func Deletion(actor, reason string, now time.Time, day Day) func(AccountRecord) (AuditEntry, error) {
	return func(cur AccountRecord) (AuditEntry, error) {
		before := StateOf(cur, day)
		return AuditEntry{Time: now, Account: cur.Name, Actor: actor, Action: ActionDelete,
			Before: &before, Reason: reason}, nil
	}
}
