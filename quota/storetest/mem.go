package storetest

import (
	"sync"
	"time"

	"github.com/relaycap/relaycap/quota"
)

// MemUsage is a quota.Store in a map, the in-memory test store: a
// quota.Local over it is the reference the other stores are held to.
type MemUsage struct {
	keep  time.Duration
	mu    sync.Mutex
	usage map[memKey]memEntry
}

type memKey struct {
	account string
	day     quota.Day
}

type memEntry struct {
	n       int64
	expires time.Time
}

// NewMemUsage returns an empty store whose days expire keep after their
// last write (never if keep is 0). Expiry follows the wall clock, as a
// database's would.
func NewMemUsage(keep time.Duration) *MemUsage {
	return &MemUsage{keep: keep, usage: make(map[memKey]memEntry)}
}

// Usage returns the relays committed for account on day. Its records
// expire by the wall clock, as Badger's do, whatever now says.
func (m *MemUsage) Usage(account string, day quota.Day, _ time.Time) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.usage[memKey{account, day}]
	if m.keep > 0 && !e.expires.After(time.Now()) {
		return 0, nil
	}
	return e.n, nil
}

// AddUsage adds the counts and returns the new totals.
func (m *MemUsage) AddUsage(account string, add []quota.DayCount) ([]int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	totals := make([]int64, len(add))
	for i, dc := range add {
		k := memKey{account, dc.Day}
		e := m.usage[k]
		if m.keep > 0 && !e.expires.After(now) {
			e.n = 0
		}
		e.n += dc.N
		e.expires = now.Add(m.keep)
		m.usage[k] = e
		totals[i] = e.n
	}
	return totals, nil
}

// Writable always succeeds: memory does not fill up like a disk.
func (m *MemUsage) Writable(time.Time) error { return nil }
