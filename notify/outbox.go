package notify

import "time"

// Entry is an event waiting in the outbox with its delivery state.
type Entry struct {
	Event    Event     `json:"event"`
	Attempts int       `json:"attempts"` // failed attempts so far
	Next     time.Time `json:"next"`     // not before this
}

// Outbox is the persisted queue of events. Every method is safe for
// concurrent use.
type Outbox interface {
	// Put stores ev, durably, before it returns. With a non-empty once key
	// it stores ev only if no event was put with that key before (within
	// OnceTTL), and reports whether it did: the check and the write are one
	// atomic step, also for several hosts on one shared store.
	Put(ev Event, once string) (bool, error)
	// Due returns up to n entries whose Next is at or before now, oldest
	// first.
	Due(now time.Time, n int) ([]Entry, error)
	// Retry records a failed attempt: the entry of id now has attempts
	// failures and waits until next.
	Retry(id string, attempts int, next time.Time) error
	// Done removes the entry of id (delivered, or given up on). Removing
	// an entry that is not there is not an error.
	Done(id string) error
}

// OnceTTL is how long an outbox remembers a once key. Once keys name a day
// or an hour, so two days cover every zone's longest day with margin.
const OnceTTL = 72 * time.Hour
