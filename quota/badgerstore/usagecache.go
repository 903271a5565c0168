package badgerstore

import (
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
	ttl     time.Duration // usageCacheTTL, or the records' own life if shorter
	mu      sync.Mutex
	epoch   uint64 // counts writes
	entries map[usageKeyOf]cachedUsage
}

type usageKeyOf struct {
	account string
	day     quota.Day
}

type cachedUsage struct {
	n  int64
	at time.Time
}

func (c *usageCache) get(account string, day quota.Day, now time.Time) (n int64, epoch uint64, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[usageKeyOf{account, day}]
	if ok && (now.Before(e.at) || now.Sub(e.at) >= c.ttl) {
		ok = false
	}
	return e.n, c.epoch, ok
}

// fill keeps a count read from disk if no write began since epoch.
func (c *usageCache) fill(account string, day quota.Day, n int64, epoch uint64, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.epoch == epoch {
		c.put(usageKeyOf{account, day}, cachedUsage{n, now})
	}
}

func (c *usageCache) put(k usageKeyOf, v cachedUsage) {
	if c.entries == nil {
		c.entries = make(map[usageKeyOf]cachedUsage)
	}
	if _, ok := c.entries[k]; !ok && len(c.entries) >= usageCacheSize {
		for old := range c.entries { // an arbitrary victim: map order is random
			delete(c.entries, old)
			break
		}
	}
	c.entries[k] = v
}

// begin marks a write: fills read before it are dropped.
func (c *usageCache) begin() {
	c.mu.Lock()
	c.epoch++
	c.mu.Unlock()
}

// remember takes the durable totals of written commits, or forgets what
// failed ones touched.
func (s *Store) remember(batch []*commit, err error) {
	now := s.now()
	c := &s.usage
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++
	for _, cm := range batch {
		for i, dc := range cm.add {
			k := usageKeyOf{cm.account, dc.Day}
			if err != nil {
				delete(c.entries, k)
				continue
			}
			c.put(k, cachedUsage{cm.totals[i], now})
		}
	}
}
