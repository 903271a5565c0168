package badgerstore

import (
	"hash/maphash"
	"sync"
	"time"

	"github.com/relaycap/relaycap/quota"
)

// Usage lookups are answered from memory. One process owns the directory
// and every write of a usage record is AddUsage's, which updates the cache
// once the record is durable; a record read from disk is kept only if no
// write began while it was read, and only for usageCacheTTL, so a day
// whose record expired (quota.history_days) is read again.
const (
	usageCacheSize = 16384
	usageCacheTTL  = time.Minute
)

type usageCache struct {
	ttl    time.Duration // usageCacheTTL, or the records' own life if shorter
	shards [usageShards]usageShard
}

// usageShards spreads the cache over locks of their own: every policy
// check and RCPT takes one, and a lock both cores take moves its cache
// line between them each time.
const usageShards = 16

var usageSeed = maphash.MakeSeed()

type usageShard struct {
	mu    sync.Mutex
	epoch uint64 // counts writes to the shard's accounts
	// entries are by account, then by day: a lookup hashes the account
	// name alone and compares a few days, instead of hashing a pair of
	// strings.
	entries map[string]*accountUsage
	size    int      // days kept, over all accounts
	_       [64]byte // one shard per cache line or more
}

type accountUsage struct{ days []cachedUsage }

type cachedUsage struct {
	day quota.Day
	n   int64
	at  time.Time
}

func (c *usageCache) shard(account string) *usageShard {
	return &c.shards[maphash.String(usageSeed, account)%usageShards]
}

func (c *usageCache) get(account string, day quota.Day, now time.Time) (n int64, epoch uint64, ok bool) {
	sh := c.shard(account)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if a := sh.entries[account]; a != nil {
		for _, e := range a.days {
			if e.day == day {
				return e.n, sh.epoch, c.fresh(e, now)
			}
		}
	}
	return 0, sh.epoch, false
}

// fresh reports whether e was read or written less than ttl before now.
func (c *usageCache) fresh(e cachedUsage, now time.Time) bool {
	return !now.Before(e.at) && now.Sub(e.at) < c.ttl
}

// fill keeps a count read from disk if no write to the shard began since
// epoch.
func (c *usageCache) fill(account string, day quota.Day, n int64, epoch uint64, now time.Time) {
	sh := c.shard(account)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.epoch == epoch {
		c.put(sh, account, cachedUsage{day, n, now})
	}
}

// put keeps v for account, dropping the account's days that are no longer
// fresh and, when the shard is full, an arbitrary other account.
func (c *usageCache) put(sh *usageShard, account string, v cachedUsage) {
	if sh.entries == nil {
		sh.entries = make(map[string]*accountUsage)
	}
	a := sh.entries[account]
	if a == nil {
		if sh.size >= usageCacheSize/usageShards {
			for old, oa := range sh.entries { // an arbitrary victim: map order is random
				sh.size -= len(oa.days)
				delete(sh.entries, old)
				break
			}
		}
		a = &accountUsage{}
		sh.entries[account] = a
	}
	before := len(a.days)
	kept := a.days[:0]
	for _, e := range a.days {
		if e.day != v.day && c.fresh(e, v.at) {
			kept = append(kept, e)
		}
	}
	clear(a.days[len(kept):])
	a.days = append(kept, v)
	sh.size += len(a.days) - before
}

// forget drops account's count of day.
func (sh *usageShard) forget(account string, day quota.Day) {
	a := sh.entries[account]
	if a == nil {
		return
	}
	for i, e := range a.days {
		if e.day == day {
			a.days = append(a.days[:i], a.days[i+1:]...)
			sh.size--
			break
		}
	}
	if len(a.days) == 0 {
		delete(sh.entries, account)
	}
}

// begin marks a write of account's usage: fills of its shard read before
// it are dropped.
func (c *usageCache) begin(account string) {
	sh := c.shard(account)
	sh.mu.Lock()
	sh.epoch++
	sh.mu.Unlock()
}

// remember takes the durable totals of written commits, or forgets what
// failed ones touched.
func (s *Store) remember(batch []*commit, err error) {
	now := s.now()
	for _, cm := range batch {
		sh := s.usage.shard(cm.account)
		sh.mu.Lock()
		sh.epoch++
		for i, dc := range cm.add {
			if err != nil {
				sh.forget(cm.account, dc.Day)
				continue
			}
			s.usage.put(sh, cm.account, cachedUsage{dc.Day, cm.totals[i], now})
		}
		sh.mu.Unlock()
	}
}
