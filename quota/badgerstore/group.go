package badgerstore

import (
	"encoding/binary"
	"errors"
	"sync"

	"github.com/dgraph-io/badger/v4"

	"github.com/relaycap/relaycap/quota"
)

// maxGroup bounds the commits written in one Badger transaction, far below
// Badger's own limit on a transaction's size.
const maxGroup = 256

// committer writes concurrent AddUsage calls together: the commits waiting
// while one transaction syncs go out in the next, with one fsync for all
// of them. Badger syncs its log once per transaction, and a relay host's
// end-of-message commits arrive together, each waiting for the fsync of
// those before it. Every commit still returns only once it is durable.
type committer struct {
	mu      sync.Mutex
	pending []*commit
	leading bool // some caller is writing a group
}

// commit is one AddUsage call waiting for its group.
type commit struct {
	account string
	add     []quota.DayCount
	totals  []int64
	err     error
	// turn receives true when this caller is to write the next group,
	// false when its commit is written (or failed: see err).
	turn chan bool
}

// addUsage queues one commit and returns once it is durable or failed.
func (s *Store) addUsage(account string, add []quota.DayCount) ([]int64, error) {
	c := &commit{account: account, add: add, turn: make(chan bool, 1)}
	g := &s.group
	g.mu.Lock()
	g.pending = append(g.pending, c)
	lead := !g.leading
	g.leading = true
	g.mu.Unlock()
	if !lead {
		lead = <-c.turn
	}
	if lead {
		s.writeGroup()
	}
	return c.totals, c.err
}

// writeGroup writes the commits pending now (up to maxGroup) in one
// transaction, tells their callers, and hands the lead to the first of the
// commits that queued meanwhile, if any.
func (s *Store) writeGroup() {
	g := &s.group
	g.mu.Lock()
	n := min(len(g.pending), maxGroup)
	batch := g.pending[:n:n]
	g.pending = g.pending[n:]
	g.mu.Unlock()

	s.writeCommits(batch)

	g.mu.Lock()
	var next *commit
	if len(g.pending) > 0 {
		next = g.pending[0]
	} else {
		g.leading = false
	}
	g.mu.Unlock()
	for _, c := range batch[1:] { // batch[0] is the caller
		c.turn <- false
	}
	if next != nil {
		next.turn <- true
	}
}

// writeCommits writes batch in one transaction. Should it fail, each
// commit is tried on its own, so that one account's bad record cannot
// refuse the others.
func (s *Store) writeCommits(batch []*commit) {
	err := s.writeUsage(batch)
	if err == nil || len(batch) == 1 {
		for _, c := range batch {
			c.err = err
		}
		s.remember(batch, err)
		return
	}
	for _, c := range batch {
		one := []*commit{c}
		c.err = s.writeUsage(one)
		s.remember(one, c.err)
	}
}

// writeUsage adds every commit's counts in one Badger transaction, retried on
// a conflict (which only a writer outside quota.Local's per-account
// serialisation could cause). A transaction reads its own writes, so two
// commits of one account in one group add up.
func (s *Store) writeUsage(batch []*commit) error {
	var err error
	for range 3 {
		err = s.db.Update(func(txn *badger.Txn) error {
			var days []quota.DayCount // the group's relays by day, for the day totals
			for _, c := range batch {
				c.totals = make([]int64, len(c.add))
				for i, dc := range c.add {
					total, err := s.addCount(txn, usageKey(c.account, dc.Day), dc)
					if err != nil {
						return err
					}
					c.totals[i] = total
					if !dc.Day.IsHour() {
						days = addDay(days, dc)
					}
				}
			}
			for _, dc := range days {
				if _, err := s.addCount(txn, dayTotalKey(dc.Day), dc); err != nil {
					return err
				}
			}
			return nil
		})
		if !errors.Is(err, badger.ErrConflict) {
			break
		}
	}
	if err != nil {
		for _, c := range batch {
			c.totals = nil
		}
	}
	return err
}

// addCount adds dc.N to the count at key, for dc's day, and returns the
// new count.
func (s *Store) addCount(txn *badger.Txn, key []byte, dc quota.DayCount) (int64, error) {
	cur, err := readCount(txn, key)
	if err != nil {
		return 0, err
	}
	var buf [8]byte
	binary.BigEndian.PutUint64(buf[:], uint64(cur+dc.N))
	ttl := s.ttl
	if dc.Day.IsHour() { // the burst brake's hour needs no history
		ttl = quota.HourWindowTTL
	}
	return cur + dc.N, txn.SetEntry(badger.NewEntry(key, buf[:]).WithTTL(ttl))
}

// addDay adds dc to the count of its day in dcs.
func addDay(dcs []quota.DayCount, dc quota.DayCount) []quota.DayCount {
	for i := range dcs {
		if dcs[i].Day == dc.Day {
			dcs[i].N += dc.N
			return dcs
		}
	}
	return append(dcs, dc)
}
