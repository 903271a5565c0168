package quota

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// AccountRecord is a store-managed account as the Accounts store keeps it.
type AccountRecord struct {
	Name       string
	DailyLimit int64
	// HourlyLimit caps one clock hour; 0 takes quota.default_hourly_limit,
	// as for a file-managed account.
	HourlyLimit int64
	// DryRun puts this account's limits in dry run.
	DryRun bool
	Status Status
	Note   string
	// TopUps are today-only relays by day. Only the day a top-up was
	// bought on gets it; the store drops days before the newest purchase's.
	TopUps  []DayCount
	Created time.Time
	Updated time.Time
}

// TopUp returns the today-only relays bought for day.
func (r AccountRecord) TopUp(day Day) int64 {
	var n int64
	for _, dc := range r.TopUps {
		if dc.Day == day {
			n += dc.N
		}
	}
	return n
}

// State is what an audit entry shows of an account before and after a
// change.
type State struct {
	DailyLimit  int64
	HourlyLimit int64
	DryRun      bool
	Status      Status
	Note        string
	TopUp       int64 // the today-only relays of the entry's day
}

// StateOf is r's state on day.
func StateOf(r AccountRecord, day Day) State {
	return State{DailyLimit: r.DailyLimit, HourlyLimit: r.HourlyLimit, DryRun: r.DryRun, Status: r.Status, Note: r.Note, TopUp: r.TopUp(day)}
}

func (s State) String() string {
	out := fmt.Sprintf("daily_limit=%d status=%s", s.DailyLimit, s.Status)
	if s.HourlyLimit != 0 {
		out += fmt.Sprintf(" hourly_limit=%d", s.HourlyLimit)
	}
	if s.DryRun {
		out += " dry_run=true"
	}
	if s.TopUp != 0 {
		out += fmt.Sprintf(" top_up=%d", s.TopUp)
	}
	if s.Note != "" {
		out += fmt.Sprintf(" note=%q", s.Note)
	}
	return out
}

// Action names what an audit entry records.
type Action string

// The changes an audit entry can record.
const (
	ActionCreate    Action = "create"
	ActionUpdate    Action = "update"
	ActionPurchase  Action = "purchase"
	ActionTopUp     Action = "top_up"
	ActionSuspend   Action = "suspend"
	ActionResume    Action = "resume"
	ActionTerminate Action = "terminate"
	ActionDelete    Action = "delete"
	// ActionComplaint records an abuse complaint; the account is unchanged.
	ActionComplaint Action = "complaint"
)

// AuditEntry is one change of a store-managed account: who, what, before →
// after, why. Before is nil for a creation, After for a deletion.
type AuditEntry struct {
	Time       time.Time
	Account    string
	Actor      string // "uid=1000" on the unix socket, "token" over TCP
	Action     Action
	Before     *State
	After      *State
	Reason     string
	PurchaseID string
	QueueIDs   []string // the Postfix queue ids a complaint or a suspension is about
}

// Purchase is relays a billing system bought for an account. Purchase ids
// are unique across accounts: the id is the idempotency key of the call.
type Purchase struct {
	ID        string
	Account   string
	Relays    int64
	TodayOnly bool      // a top-up of Day alone instead of a raise of the daily limit
	Day       Day       // the local day it was made on
	Time      time.Time // when it was made
	Actor     string

	// The result, as the first call answered it.
	DailyLimit int64 // the account's daily limit right after
	DayLimit   int64 // Day's limit right after: the daily limit plus Day's top-ups
}

// sameRequest reports whether q asks for what p did, so that q replays p.
func (p Purchase) sameRequest(q Purchase) bool {
	return p.ID == q.ID && p.Account == q.Account && p.Relays == q.Relays && p.TodayOnly == q.TodayOnly
}

// AccountUsage is one account's committed relays on a day.
type AccountUsage struct {
	Account string
	Used    int64
}

// ListQuery selects a page of accounts in name order.
type ListQuery struct {
	Status Status // "" for all
	After  string // the last name of the previous page
	Limit  int    // at most this many; must be > 0
}

// MaxLimit bounds a daily limit, and a day's limit with its top-ups: far
// above any plan, and far enough below the end of int64 that limits,
// usage and reservations add up without wrapping (a wrapped limit is
// negative and takes away what was paid for).
const MaxLimit int64 = 1_000_000_000_000

// Errors of the Accounts store that callers tell apart.
var (
	ErrNoAccount        = errors.New("no such account")
	ErrPurchaseConflict = errors.New("purchase id already used for a different purchase")
	ErrTerminated       = errors.New("account is terminated")
	ErrLimitTooHigh     = fmt.Errorf("a limit may be at most %d relays a day", MaxLimit)
)

// withinLimit reports whether the non-negative parts add up to at most
// MaxLimit, without overflowing on the way.
func withinLimit(parts ...int64) bool {
	var sum int64
	for _, n := range parts {
		if n < 0 || n > MaxLimit-sum {
			return false
		}
		sum += n
	}
	return true
}

// Accounts keeps the store-managed accounts and everything about them that
// is not the hot-path counter: records, purchases, the audit trail, and
// reads of the usage history. Every method takes a context; names are
// NormalizeName'd by the caller and hold no NUL.
//
// Atomicity, which every implementation must give (quota/storetest checks
// it):
//   - UpdateAccount, DeleteAccount and Purchase each write the record and
//     its audit entry together, all or nothing, durably before they return,
//     and are serialised per account: concurrent calls never lose an update.
//   - Purchase is idempotent on Purchase.ID across all accounts and all
//     time, also after the account is deleted: the same request again
//     returns the first result with replay set and changes nothing; the same
//     id with a different account, relay count or kind fails with
//     ErrPurchaseConflict and changes nothing.
//   - The audit trail, the purchases and the usage history outlive a deleted
//     account.
type Accounts interface {
	// Account returns name's record, if there is one.
	Account(ctx context.Context, name string) (AccountRecord, bool, error)
	// ListAccounts returns a page of records in name order.
	ListAccounts(ctx context.Context, q ListQuery) ([]AccountRecord, error)
	// UpdateAccount reads name's record and writes what change makes of
	// it, with change's audit entry. change may run more than once (an
	// implementation may retry on a conflict) and must only compute; its
	// error aborts the update and is returned as is.
	UpdateAccount(ctx context.Context, name string, change func(cur AccountRecord, exists bool) (AccountRecord, AuditEntry, error)) (AccountRecord, error)
	// DeleteAccount removes name's record after check approves it with its
	// audit entry (same rules as change); ErrNoAccount if there is none.
	DeleteAccount(ctx context.Context, name string, check func(cur AccountRecord) (AuditEntry, error)) error
	// Purchase applies p with ApplyPurchase and records it, its audit entry
	// (PurchaseAudit) and its result. It returns the purchase as first
	// recorded and whether this call was a replay. ErrNoAccount and
	// ErrTerminated refuse it.
	Purchase(ctx context.Context, p Purchase) (Purchase, bool, error)
	// Purchases returns up to n of account's purchases, newest first.
	Purchases(ctx context.Context, account string, n int) ([]Purchase, error)
	// Audit returns up to n of account's audit entries, newest first.
	Audit(ctx context.Context, account string, n int) ([]AuditEntry, error)
	// History returns account's committed relays per day from from to to
	// (inclusive), oldest first; days without relays are left out.
	History(ctx context.Context, account string, from, to Day) ([]DayCount, error)
	// Top returns up to n accounts with the most committed relays on day,
	// most first, ties by name.
	Top(ctx context.Context, day Day, n int) ([]AccountUsage, error)
	// UsedOn returns the relays committed on day by every login (file- or
	// store-managed, on the default limit, deleted since): a total the
	// store keeps as it commits, so reading it costs the same at any number
	// of accounts.
	UsedOn(ctx context.Context, day Day) (int64, error)
}

// ApplyPurchase is the rule every store applies for a purchase: a raise
// adds p.Relays to the daily limit from now on, today included; a today-only
// top-up adds them to p.Day alone. Top-ups of days before p.Day are dropped.
// It fills p's result fields.
func ApplyPurchase(r AccountRecord, p Purchase) (AccountRecord, Purchase, error) {
	if r.Status == StatusTerminated {
		return r, p, ErrTerminated
	}
	if p.Relays <= 0 || p.ID == "" || p.Day == "" {
		return r, p, fmt.Errorf("quota: invalid purchase %+v", p)
	}
	if !withinLimit(r.DailyLimit, r.TopUp(p.Day), p.Relays) {
		return r, p, fmt.Errorf("%w: %s has %d (+%d on %s), %d more is too many",
			ErrLimitTooHigh, r.Name, r.DailyLimit, r.TopUp(p.Day), p.Day, p.Relays)
	}
	var kept []DayCount
	for _, dc := range r.TopUps {
		if dc.Day >= p.Day {
			kept = append(kept, dc)
		}
	}
	r.TopUps = kept
	if p.TodayOnly {
		r.TopUps = addDay(r.TopUps, p.Day, p.Relays)
	} else {
		r.DailyLimit += p.Relays
	}
	r.Updated = p.Time
	p.DailyLimit = r.DailyLimit
	p.DayLimit = r.DailyLimit + r.TopUp(p.Day)
	return r, p, nil
}

// ReplayOf answers a purchase whose id is already recorded as first: the
// first result if p asks for the same, else ErrPurchaseConflict.
func ReplayOf(first, p Purchase) (Purchase, error) {
	if !first.sameRequest(p) {
		return Purchase{}, fmt.Errorf("%w: %q was %d relays (today only: %v) for %s",
			ErrPurchaseConflict, first.ID, first.Relays, first.TodayOnly, first.Account)
	}
	return first, nil
}

// PurchaseAudit is the audit entry of p changing before into after.
func PurchaseAudit(p Purchase, before, after AccountRecord) AuditEntry {
	action := ActionPurchase
	reason := fmt.Sprintf("+%d relays per day", p.Relays)
	if p.TodayOnly {
		action = ActionTopUp
		reason = fmt.Sprintf("+%d relays on %s only", p.Relays, p.Day)
	}
	b, a := StateOf(before, p.Day), StateOf(after, p.Day)
	return AuditEntry{Time: p.Time, Account: p.Account, Actor: p.Actor, Action: action,
		Before: &b, After: &a, Reason: reason, PurchaseID: p.ID}
}

func addDay(dcs []DayCount, day Day, n int64) []DayCount {
	for i := range dcs {
		if dcs[i].Day == day {
			dcs[i].N += n
			return dcs
		}
	}
	return append(dcs, DayCount{day, n})
}
