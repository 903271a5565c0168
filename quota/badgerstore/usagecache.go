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
	mu      sync.Mutex
	epoch   uint64 // counts writes to the shard's accounts
	entries map[usageKeyOf]cachedUsage
	_       [64]byte // one shard per cache line or more
}

type usageKeyOf struct {
	account string
	day     quota.Day
}

type cachedUsage struct {
	n  int64
	at time.Time
}

func (c *usageCache) shard(account string) *usageShard {
	return &c.shards[maphash.String(usageSeed, account)%usageShards]
}

func (c *usageCache) get(account string, day quota.Day, now time.Time) (n int64, epoch uint64, ok bool) {
	sh := c.shard(account)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e, ok := sh.entries[usageKeyOf{account, day}]
	if ok && (now.Before(e.at) || now.Sub(e.at) >= c.ttl) {
		ok = false
	}
	return e.n, sh.epoch, ok
}

// fill keeps a count read from disk if no write to the shard began since
// epoch.
func (c *usageCache) fill(account string, day quota.Day, n int64, epoch uint64, now time.Time) {
	sh := c.shard(account)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.epoch == epoch {
		sh.put(usageKeyOf{account, day}, cachedUsage{n, now})
	}
}

func (sh *usageShard) put(k usageKeyOf, v cachedUsage) {
	if sh.entries == nil {
		sh.entries = make(map[usageKeyOf]cachedUsage)
	}
	if _, ok := sh.entries[k]; !ok && len(sh.entries) >= usageCacheSize/usageShards {
		for old := range sh.entries { // an arbitrary victim: map order is random
			delete(sh.entries, old)
			break
		}
	}
	sh.entries[k] = v
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
			k := usageKeyOf{cm.account, dc.Day}
			if err != nil {
				delete(sh.entries, k)
				continue
			}
			sh.put(k, cachedUsage{cm.totals[i], now})
		}
		sh.mu.Unlock()
	}
}
