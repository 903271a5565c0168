package quota

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Local is a Counter for one process: holds live in its memory, usage in a
// Store. Every call on one account holds that account's lock, so
// check-and-hold is atomic; holds die with the process, which is all one
// host needs. Expiry is judged against the now each call passes.
//
// A commit does not hold the lock while its write syncs: its holds move
// aside, still counted as reserved, and come out when the write is durable,
// in the same step as the new usage goes in. So one account's RCPTs and
// policy checks never wait for its commits' fsyncs, and its concurrent
// commits reach the Store together (which may write them in one
// transaction). The usage Local counts with is read from the Store once
// while it works on an account and then kept up to date by its own
// commits: nobody else writes this host's usage.
type Local struct {
	usage Store

	accts [acctShards]acctShard // by a hash of the account name

	done [doneShards]doneSet // by a hash of the transaction id
}

// acctShards spreads the accounts worked on over locks of their own: every
// policy check and RCPT takes one, so a single lock is contended between
// cores.
const acctShards = 64

type acctShard struct {
	mu    sync.Mutex
	accts map[string]*localAcct
	// kept is len(accts), written under mu and read without it: a policy
	// check of a shard that keeps nothing (no open transaction among its
	// accounts) needs neither the lock nor the map.
	kept atomic.Int32
	_    [64]byte // one shard per cache line or more
}

// localAcct exists only while someone works on the account or holds a
// reservation for it, so memory grows with open transactions, not accounts.
type localAcct struct {
	mu    sync.Mutex
	refs  int    // guarded by its acctShard's mu
	holds []Hold // guarded by mu, as the rest
	// committing are the holds of commits whose write is under way: still
	// reserved, but no longer released, expired or committed again.
	committing []Hold
	txns       []string // the transactions writing
	// used is each day's usage as read from the Store, plus the commits
	// made since; stale after a failed write until no write is under way.
	used  []DayCount
	stale bool
}

var _ Counter = (*Local)(nil)

// NewLocal returns a counter that keeps holds in memory in front of usage.
// Commit remembers a transaction for keep, or until thousands of others
// came after it if that is sooner, so a retry is not counted twice.
func NewLocal(usage Store, keep time.Duration) *Local {
	l := &Local{usage: usage}
	for i := range l.accts {
		l.accts[i].accts = make(map[string]*localAcct)
	}
	for i := range l.done {
		l.done[i].keep = keep
	}
	return l
}

// doneShards spreads the commit markers over locks of their own.
const doneShards = 16

// shardSeed picks the shard of a transaction id or an account name, here
// and in AccountCache.
var shardSeed = maphash.MakeSeed()

func (l *Local) doneOf(txn string) *doneSet {
	return &l.done[maphash.String(shardSeed, txn)%doneShards]
}

func (l *Local) shardOf(account string) *acctShard {
	return &l.accts[maphash.String(shardSeed, account)%acctShards]
}

// Reserve grants h if the account's usage plus its live holds leave room.
func (l *Local) Reserve(_ context.Context, h Hold, limit int64, now time.Time) (Count, bool, error) {
	if err := h.Validate(now); err != nil {
		return Count{}, false, err
	}
	a := l.lock(h.Account)
	defer l.unlock(h.Account, a)
	a.purge(now)
	used, err := l.usedOn(a, h.Account, h.Day, now)
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
	if err := l.usage.Writable(now); err != nil {
		return c, false, err
	}
	a.holds = append(a.holds, h)
	c.Reserved += h.N
	return c, true, nil
}

// Peek returns account's usage and live holds on day.
func (l *Local) Peek(_ context.Context, account string, day Day, now time.Time) (Count, error) {
	a := l.lockIfKept(account)
	if a == nil {
		// Nobody works on the account and it holds nothing: its usage is
		// the Store's, and reading it needs no state kept for the account
		// (most policy checks come here).
		used, err := l.usage.Usage(account, day, now)
		if err != nil {
			return Count{}, err
		}
		return l.peeked(Count{Used: used}, now)
	}
	defer l.unlock(account, a)
	a.purge(now)
	used, err := l.usedOn(a, account, day, now)
	if err != nil {
		return Count{}, err
	}
	return l.peeked(Count{Used: used, Reserved: a.reserved(day)}, now)
}

// peeked is Peek's answer c, with ErrReadOnly while the Store refuses
// writes.
func (l *Local) peeked(c Count, now time.Time) (Count, error) {
	if err := l.usage.Writable(now); err != nil {
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
	if slices.Contains(a.txns, txn) {
		return nil, fmt.Errorf("quota: transaction %s is being committed already", txn)
	}
	missing := a.missing(holds)
	// A commit consumes its holds, so only a transaction missing some can
	// be a retry of one already counted.
	if len(missing) > 0 {
		if totals, ok := l.doneOf(txn).get(txn, now); ok {
			return totals, nil
		}
	}
	add := byDay(holds)
	for _, dc := range add {
		used, err := l.usedOn(a, account, dc.Day, now) // read now, so no write is under way when it is
		if err != nil {
			return nil, err
		}
		if n := sumDay(missing, dc.Day); n > 0 && used+a.reserved(dc.Day)+n > limit {
			return nil, fmt.Errorf("%w: %d relays of %q on %s", ErrHoldLost, n, account, dc.Day)
		}
	}
	// The holds stay reserved while the write syncs, without the lock.
	a.drop(holds)
	a.committing = append(a.committing, holds...)
	a.txns = append(a.txns, txn)
	a.mu.Unlock()
	totals, err := l.usage.AddUsage(account, add)
	a.mu.Lock()
	a.committing = dropHolds(a.committing, holds)
	a.txns = slices.DeleteFunc(a.txns, func(t string) bool { return t == txn })
	if err != nil {
		// Nothing counted, the holds are gone. Had the write gone through
		// after all, the count is read again once no write is under way.
		a.stale = true
		return nil, err
	}
	for i := range add {
		a.setUsed(add[i].Day, totals[i])
		add[i].N = totals[i]
	}
	l.doneOf(txn).put(txn, add, now)
	return add, nil
}

// usedOn returns account's usage on day as Local counts it, reading the
// Store the first time and whenever a failed write left it unsure; the
// caller holds a.
func (l *Local) usedOn(a *localAcct, account string, day Day, now time.Time) (int64, error) {
	if a.stale {
		if len(a.txns) > 0 {
			return 0, errors.New("quota: usage unsure after a failed write; retry")
		}
		a.used, a.stale = nil, false
	}
	for _, dc := range a.used {
		if dc.Day == day {
			return dc.N, nil
		}
	}
	n, err := l.usage.Usage(account, day, now)
	if err != nil {
		return 0, err
	}
	a.used = append(a.used, DayCount{day, n})
	return n, nil
}

// setUsed takes a durable total; totals only grow, and commits that went
// out together may come back in any order.
func (a *localAcct) setUsed(day Day, total int64) {
	for i := range a.used {
		if a.used[i].Day == day {
			a.used[i].N = max(a.used[i].N, total)
			return
		}
	}
	a.used = append(a.used, DayCount{day, total})
}

func sumDay(hs []Hold, day Day) int64 {
	var n int64
	for _, h := range hs {
		if h.Day == day {
			n += h.N
		}
	}
	return n
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
	sh := l.shardOf(name)
	sh.mu.Lock()
	a := sh.accts[name]
	if a == nil {
		a = &localAcct{}
		sh.accts[name] = a
		sh.kept.Store(int32(len(sh.accts)))
	}
	a.refs++
	sh.mu.Unlock()
	a.mu.Lock()
	return a
}

// lockIfKept is lock for an account whose state is kept (someone works on
// it or it holds relays), and nil without a lock for one whose is not.
func (l *Local) lockIfKept(name string) *localAcct {
	sh := l.shardOf(name)
	if sh.kept.Load() == 0 {
		return nil
	}
	sh.mu.Lock()
	a := sh.accts[name]
	if a == nil {
		sh.mu.Unlock()
		return nil
	}
	a.refs++
	sh.mu.Unlock()
	a.mu.Lock()
	return a
}

func (l *Local) unlock(name string, a *localAcct) {
	a.mu.Unlock()
	sh := l.shardOf(name)
	sh.mu.Lock()
	a.refs--
	// With no refs left nobody holds a.mu, so reading holds is safe (and
	// no write is under way: a commit keeps its ref through it).
	if a.refs == 0 && len(a.holds) == 0 {
		delete(sh.accts, name)
		sh.kept.Store(int32(len(sh.accts)))
	}
	sh.mu.Unlock()
}

// idle reports whether no account state is kept (for tests).
func (l *Local) idle() bool {
	for i := range l.accts {
		sh := &l.accts[i]
		sh.mu.Lock()
		n := len(sh.accts)
		sh.mu.Unlock()
		if n > 0 {
			return false
		}
	}
	return true
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
	return sumDay(a.holds, day) + sumDay(a.committing, day)
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

func (a *localAcct) drop(hs []Hold) { a.holds = dropHolds(a.holds, hs) }

// dropHolds removes the holds of hs from from.
func dropHolds(from, hs []Hold) []Hold {
	for _, h := range hs {
		for i := range from {
			if from[i].ID == h.ID {
				last := len(from) - 1
				from[i] = from[last]
				from[last] = Hold{}
				from = from[:last]
				break
			}
		}
	}
	return from
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
