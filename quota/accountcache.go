package quota

import (
	"context"
	"hash/maphash"
	"sync"
)

// AccountCache answers Account from memory and passes every write through
// to the Accounts store beneath, forgetting what the write touched once it
// is durable. A store read costs a transaction; the policy service and the
// milter look an account up for every recipient, so most lookups never
// reach the store.
//
// Only for a store that this process alone writes (Badger, whose
// directory one process locks): a change made by another process, such
// as a second relay host on a shared Redis, would never reach the cache.
// Every write must go through the cache; one made to the store beneath
// directly stays unseen until the entry is evicted.
type AccountCache struct {
	Accounts
	max    int // per shard
	shards [accountShards]accountShard
}

// accountShards spreads the cache over locks of their own: every policy
// check and RCPT takes one, and a lock both cores take moves its cache
// line between them each time.
const accountShards = 16

type accountShard struct {
	mu sync.Mutex
	// epoch counts writes to the shard's accounts. A lookup that missed
	// fills its entry only if no write began since it read the store, so a
	// record read just before a change cannot outlive the change.
	epoch   uint64
	entries map[string]*cachedAccount // pointers: a hit copies the record once, not twice
	_       [64]byte                  // one shard per cache line or more
}

type cachedAccount struct {
	rec   AccountRecord
	found bool
}

// NewAccountCache caches up to size lookups (found or not) of accounts, at
// least one per shard.
func NewAccountCache(accounts Accounts, size int) *AccountCache {
	c := &AccountCache{Accounts: accounts, max: max(1, size/accountShards)}
	for i := range c.shards {
		c.shards[i].entries = make(map[string]*cachedAccount)
	}
	return c
}

func (c *AccountCache) shard(name string) *accountShard {
	return &c.shards[maphash.String(shardSeed, name)%accountShards]
}

// Account returns name's record from memory, or from the store and keeps
// it. A record shares its TopUps with the cache: callers must not change it.
func (c *AccountCache) Account(ctx context.Context, name string) (AccountRecord, bool, error) {
	sh := c.shard(name)
	sh.mu.Lock()
	e, hit := sh.entries[name]
	epoch := sh.epoch
	sh.mu.Unlock()
	if hit {
		return e.rec, e.found, nil
	}
	rec, found, err := c.Accounts.Account(ctx, name)
	if err != nil {
		return rec, found, err
	}
	sh.mu.Lock()
	if sh.epoch == epoch {
		if len(sh.entries) >= c.max {
			for k := range sh.entries { // an arbitrary victim: map order is random
				delete(sh.entries, k)
				break
			}
		}
		sh.entries[name] = &cachedAccount{rec, found}
	}
	sh.mu.Unlock()
	return rec, found, nil
}

// UpdateAccount writes through and forgets name.
func (c *AccountCache) UpdateAccount(ctx context.Context, name string, change func(AccountRecord, bool) (AccountRecord, AuditEntry, error)) (AccountRecord, error) {
	c.forget(name)
	defer c.forget(name)
	return c.Accounts.UpdateAccount(ctx, name, change)
}

// DeleteAccount writes through and forgets name.
func (c *AccountCache) DeleteAccount(ctx context.Context, name string, check func(AccountRecord) (AuditEntry, error)) error {
	c.forget(name)
	defer c.forget(name)
	return c.Accounts.DeleteAccount(ctx, name, check)
}

// Purchase writes through and forgets the account.
func (c *AccountCache) Purchase(ctx context.Context, p Purchase) (Purchase, bool, error) {
	c.forget(p.Account)
	defer c.forget(p.Account)
	return c.Accounts.Purchase(ctx, p)
}

// forget drops name and makes every lookup in flight leave the cache alone.
// A write calls it before it starts and again once it is durable (or has
// failed), so that a lookup that read the store during the write cannot
// keep the record from before it.
func (c *AccountCache) forget(name string) {
	sh := c.shard(name)
	sh.mu.Lock()
	sh.epoch++
	delete(sh.entries, name)
	sh.mu.Unlock()
}

// Len is the number of lookups held.
func (c *AccountCache) Len() int {
	n := 0
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		n += len(sh.entries)
		sh.mu.Unlock()
	}
	return n
}
