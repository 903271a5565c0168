package quota

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"sync"
	"time"
)

// Local is a Counter for one process: holds live in its memory, usage in a
// Store. Every call on one account holds that account's lock, so
// check-and-hold is atomic; holds die with the process, which is all one
// host needs. Expiry is judged against the now each call passes.
type Local struct {
	usage Store

	mu    sync.Mutex
	accts map[string]*localAcct

	done [doneShards]doneSet // by a hash of the transaction id
}

// localAcct exists only while someone works on the account or holds a
// reservation for it, so memory grows with open transactions, not accounts.
type localAcct struct {
	mu    sync.Mutex
	refs  int    // guarded by Local.mu
	holds []Hold // guarded by mu
}

var _ Counter = (*Local)(nil)

// NewLocal returns a counter that keeps holds in memory in front of usage.
// Commit remembers a transaction for keep, or until thousands of others
// came after it if that is sooner, so a retry is not counted twice.
func NewLocal(usage Store, keep time.Duration) *Local {
	l := &Local{usage: usage, accts: make(map[string]*localAcct)}
	for i := range l.done {
		l.done[i].keep = keep
	}
	return l
}

// doneShards spreads the commit markers over locks of their own.
const doneShards = 16

var doneSeed = maphash.MakeSeed()

func (l *Local) doneOf(txn string) *doneSet {
	return &l.done[maphash.String(doneSeed, txn)%doneShards]
}

// Reserve grants h if the account's usage plus its live holds leave room.
func (l *Local) Reserve(_ context.Context, h Hold, limit int64, now time.Time) (Count, bool, error) {
	if err := h.Validate(now); err != nil {
		return Count{}, false, err
	}
	a := l.lock(h.Account)
	defer l.unlock(h.Account, a)
	a.purge(now)
	used, err := l.usage.Usage(h.Account, h.Day)
	if err != nil {
		return Count{}, false, err
	}
	c := Count{Used: used, Reserved: a.reserved(h.Day)}
	if a.has(h.ID) {
		return c, true, nil
	}
	if c.Used+c.Reserved+h.N > limit {
		return c, false, nil
	}
	// Only a hold that is granted needs a write at commit.
	if err := l.usage.Writable(); err != nil {
		return c, false, err
	}
	a.holds = append(a.holds, h)
	c.Reserved += h.N
	return c, true, nil
}

// Peek returns account's usage and live holds on day.
func (l *Local) Peek(_ context.Context, account string, day Day, now time.Time) (Count, error) {
	a := l.lock(account)
	defer l.unlock(account, a)
	a.purge(now)
	used, err := l.usage.Usage(account, day)
	if err != nil {
		return Count{}, err
	}
	c := Count{Used: used, Reserved: a.reserved(day)}
	if err := l.usage.Writable(); err != nil {
		return c, fmt.Errorf("%w: %w", ErrReadOnly, err)
	}
	return c, nil
}

// Commit moves holds into usage in one write of the Store.
func (l *Local) Commit(_ context.Context, txn string, holds []Hold, limit int64, now time.Time) ([]DayCount, error) {
	if txn == "" || len(holds) == 0 {
		return nil, errors.New("quota: commit without a transaction id or holds")
	}
	account := holds[0].Account
	for _, h := range holds {
		if h.Account != account {
			return nil, fmt.Errorf("quota: one commit for %q and %q", account, h.Account)
		}
	}
	a := l.lock(account)
	defer l.unlock(account, a)
	a.purge(now)
	missing := a.missing(holds)
	// A commit consumes its holds, so only a transaction missing some can
	// be a retry of one already counted.
	if len(missing) > 0 {
		if totals, ok := l.doneOf(txn).get(txn, now); ok {
			return totals, nil
		}
	}
	add := byDay(holds)
	for _, dc := range byDay(missing) {
		used, err := l.usage.Usage(account, dc.Day)
		if err != nil {
			return nil, err
		}
		if used+a.reserved(dc.Day)+dc.N > limit {
			return nil, fmt.Errorf("%w: %d relays of %q on %s", ErrHoldLost, dc.N, account, dc.Day)
		}
	}
	a.drop(holds)
	totals, err := l.usage.AddUsage(account, add)
	if err != nil {
		return nil, err
	}
	for i := range add {
		add[i].N = totals[i]
	}
	l.doneOf(txn).put(txn, add, now)
	return add, nil
}

// Release drops holds.
func (l *Local) Release(_ context.Context, holds []Hold) error {
	for len(holds) > 0 {
		account := holds[0].Account
		n := 1
		for n < len(holds) && holds[n].Account == account {
			n++
		}
		a := l.lock(account)
		a.drop(holds[:n])
		l.unlock(account, a)
		holds = holds[n:]
	}
	return nil
}

func (l *Local) lock(name string) *localAcct {
	l.mu.Lock()
	a := l.accts[name]
	if a == nil {
		a = &localAcct{}
		l.accts[name] = a
	}
	a.refs++
	l.mu.Unlock()
	a.mu.Lock()
	return a
}

func (l *Local) unlock(name string, a *localAcct) {
	a.mu.Unlock()
	l.mu.Lock()
	a.refs--
	// With no refs left nobody holds a.mu, so reading holds is safe.
	if a.refs == 0 && len(a.holds) == 0 {
		delete(l.accts, name)
	}
	l.mu.Unlock()
}

// idle reports whether no account state is kept (for tests).
func (l *Local) idle() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.accts) == 0
}

func (a *localAcct) purge(now time.Time) {
	live := a.holds[:0]
	for _, h := range a.holds {
		if h.Expires.After(now) {
			live = append(live, h)
		}
	}
	clear(a.holds[len(live):])
	a.holds = live
}

func (a *localAcct) reserved(day Day) int64 {
	var n int64
	for _, h := range a.holds {
		if h.Day == day {
			n += h.N
		}
	}
	return n
}

func (a *localAcct) has(id string) bool {
	for _, h := range a.holds {
		if h.ID == id {
			return true
		}
	}
	return false
}

// missing returns the holds of hs that a no longer holds.
func (a *localAcct) missing(hs []Hold) []Hold {
	var out []Hold
	for _, h := range hs {
		if !a.has(h.ID) {
			out = append(out, h)
		}
	}
	return out
}

func (a *localAcct) drop(hs []Hold) {
	for _, h := range hs {
		for i := range a.holds {
			if a.holds[i].ID == h.ID {
				last := len(a.holds) - 1
				a.holds[i] = a.holds[last]
				a.holds[last] = Hold{}
				a.holds = a.holds[:last]
				break
			}
		}
	}
}

// byDay sums holds per day, in the order the days first appear.
func byDay(hs []Hold) []DayCount {
	var out []DayCount
next:
	for _, h := range hs {
		for i := range out {
			if out[i].Day == h.Day {
				out[i].N += h.N
				continue next
			}
		}
		out = append(out, DayCount{h.Day, h.N})
	}
	return out
}

// Validate rejects a hold that could not be counted: no id, account or
// day, no relays, or an expiry not after now.
func (h Hold) Validate(now time.Time) error {
	switch {
	case h.ID == "" || h.Account == "" || h.Day == "":
		return fmt.Errorf("quota: hold without id, account or day: %+v", h)
	case h.N <= 0:
		return fmt.Errorf("quota: hold of %d relays", h.N)
	case !h.Expires.After(now):
		return fmt.Errorf("quota: hold %s expires before it starts", h.ID)
	}
	return nil
}

// doneMax is how many commits a doneSet remembers at most.
const doneMax = 1 << 10

// doneSet remembers the last doneMax commits of its shard for up to keep,
// in a ring: a commit costs no hashing, and only a commit missing holds
// (a retry, or holds that expired) searches it.
type doneSet struct {
	keep time.Duration
	mu   sync.Mutex
	ring []doneEntry
	next int
}

type doneEntry struct {
	txn    string
	totals []DayCount
	at     time.Time
}

func (d *doneSet) get(txn string, now time.Time) ([]DayCount, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, e := range d.ring {
		if e.txn == txn && now.Sub(e.at) < d.keep {
			return e.totals, true
		}
	}
	return nil, false
}

func (d *doneSet) put(txn string, totals []DayCount, now time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.ring) < doneMax {
		d.ring = append(d.ring, doneEntry{txn, totals, now})
		return
	}
	d.ring[d.next] = doneEntry{txn, totals, now}
	d.next = (d.next + 1) % doneMax
}
