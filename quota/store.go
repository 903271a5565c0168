package quota

import (
	"context"
	"errors"
	"time"
)

// ErrStore marks a failure of the store. Adapters answer it with a temporary
// failure: nothing was counted, and the client retries.
var ErrStore = errors.New("quota store failure")

// ErrReadOnly marks a store that can be read but cannot take commits now,
// such as one on a nearly full disk. Peek returns it together with a valid
// count, so that a refusal that needs no write stays exact.
var ErrReadOnly = errors.New("quota store cannot take commits now")

// ErrHoldLost means a commit found one of its holds expired or gone and the
// limit no longer leaves room for it: nothing was counted.
var ErrHoldLost = errors.New("reservation expired and the limit leaves no room for it")

// DayCount is a number of relays on one day.
type DayCount struct {
	Day Day
	N   int64
}

// Hold is a reservation of N relays for Account on Day that is not yet
// counted. ID is unique across every host sharing the counter; a hold
// counts until Expires, then it is as good as released, so a host that
// dies with holds open strands their capacity only until then.
type Hold struct {
	ID      string
	Account string
	Day     Day
	N       int64
	Expires time.Time
}

// Count is what a counter knows of one account and day, over every host.
type Count struct {
	Used     int64 // committed relays
	Reserved int64 // relays in live holds
}

// Counter is the hot path of the quota: every method is atomic in the
// store, so any number of goroutines and hosts can share one counter and no
// account ever goes over its limit. Implementations state their durability.
type Counter interface {
	// Reserve grants h only if Used + Reserved + h.N <= limit for h's
	// account and day, counting only live holds, and returns the count
	// with h if granted. A refusal is no error. Reserving a hold ID that
	// is live again grants it without counting it twice.
	Reserve(ctx context.Context, h Hold, limit int64, now time.Time) (Count, bool, error)
	// Peek returns the count of account on day. On a store that cannot
	// take commits it returns the count and an error wrapping ErrReadOnly.
	Peek(ctx context.Context, account string, day Day, now time.Time) (Count, error)
	// Commit turns holds, all of one account, into usage: all of them or
	// none, and once per txn even when retried (a retry returns the totals
	// of the first). A hold that has expired is reserved again if limit
	// leaves room; otherwise nothing counts and the error wraps
	// ErrHoldLost. It returns each day's new usage in the order the days
	// first appear in holds, once the increments are durable.
	Commit(ctx context.Context, txn string, holds []Hold, limit int64, now time.Time) ([]DayCount, error)
	// Release drops holds without counting them; unknown or expired holds
	// are ignored.
	Release(ctx context.Context, holds []Hold) error
}

// Store keeps the daily usage of one host's accounts; Local puts the
// holds in front of it. Local may call AddUsage for one account from
// several goroutines at once (its commits do not wait for each other's
// writes): the increments must add up.
type Store interface {
	// Usage returns the relays committed for account on day, as of now
	// (a store that keeps answers in memory judges their age by it).
	Usage(account string, day Day, now time.Time) (int64, error)
	// AddUsage adds each count to account's usage on its day, all or
	// nothing, and returns the new totals in the same order. It returns
	// only once the increments are durable.
	AddUsage(account string, add []DayCount) ([]int64, error)
	// Writable reports an error when AddUsage would fail now for a reason
	// that lasts, such as a nearly full disk, so that a recipient is
	// refused before the client sends its message, not after. A store
	// may answer from a check younger than now allows.
	Writable(now time.Time) error
}

// A RecordCounter is a Counter that keeps the store-managed accounts too
// (a store shared by several hosts) and reads an account's record in the
// same call as its count, so a policy check or a RCPT costs one round trip.
// The engine uses it for logins the config file does not name.
type RecordCounter interface {
	Counter
	// PeekRecord is Peek that also returns account's record, if any.
	PeekRecord(ctx context.Context, account string, day Day, now time.Time) (Count, AccountRecord, bool, error)
	// ReserveRecord is Reserve against the limit of h.Account's record on
	// h.Day (daily limit plus the day's top-ups; 0 unless its status is
	// active), or fallback when there is none; dryRun lifts a positive
	// limit. It returns the record it decided with.
	ReserveRecord(ctx context.Context, h Hold, fallback int64, dryRun bool, now time.Time) (Count, AccountRecord, bool, bool, error)
	// CommitRecord is Commit against the limit of the record it reads with
	// the holds (as ReserveRecord's); for a record whose status is not
	// active it counts nothing and returns nil totals and no error.
	CommitRecord(ctx context.Context, txn string, holds []Hold, fallback int64, dryRun bool, now time.Time) ([]DayCount, AccountRecord, bool, error)
}
