package daemon

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/relaycap/relaycap/config"
	"github.com/relaycap/relaycap/metrics"
	"github.com/relaycap/relaycap/quota"
)

// tallyTTL is how long one count of the accounts serves the scrapes and
// status calls after it: counting reads every record (some 2 µs each on
// Badger, a round trip per page and record on Redis), seconds at a
// million accounts, and Prometheus scrapes every 15 s.
const tallyTTL = time.Minute

// tallyCache keeps the last count of the accounts. A change of an account
// through this host (admin API, burst brake), a reload or a new day makes
// the next scrape count again; a change made on another host sharing Redis
// shows within tallyTTL.
type tallyCache struct {
	changes atomic.Uint64 // account changes made through this host

	mu      sync.Mutex // held while counting: scrapes at one moment share one count
	valid   bool
	cfg     *config.Config // the config it was counted with (the file's accounts)
	day     quota.Day
	changed uint64 // changes when the count began
	at      time.Time
	tally   metrics.Tally
}

// accountTally returns the count of the accounts on now's day, from the
// cache while it is fresh.
func (d *Daemon) accountTally(cfg *config.Config, now time.Time) (metrics.Tally, error) {
	c := &d.tally
	c.mu.Lock()
	defer c.mu.Unlock()
	day := quota.DayOf(now, cfg.Location)
	changed := c.changes.Load()
	if c.valid && c.cfg == cfg && c.day == day && c.changed == changed && !now.Before(c.at) && now.Sub(c.at) < tallyTTL {
		return c.tally, nil
	}
	t, err := d.countAccounts(cfg, day)
	c.valid = err == nil
	c.cfg, c.day, c.changed, c.at, c.tally = cfg, day, changed, now, t
	return t, err
}

// countAccounts counts the file-managed accounts and the store-managed
// ones the file does not override, as the engine resolves them on day
// (its top-ups included in the limit), paging through the store so that
// it never holds all of them.
func (d *Daemon) countAccounts(cfg *config.Config, day quota.Day) (metrics.Tally, error) {
	var t metrics.Tally
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	file := cfg.Quota.Accounts
	for a := range file.All() {
		t.Add(a)
	}
	for q := (quota.ListQuery{Limit: 1000}); ; {
		page, err := d.acctStore.ListAccounts(ctx, q)
		if err != nil {
			return metrics.Tally{}, err
		}
		for _, r := range page {
			if _, ok := file.Get(quota.NormalizeName(r.Name)); ok {
				continue
			}
			t.Add(quota.Account{Name: r.Name, DailyLimit: r.DailyLimit, TopUp: r.TopUp(day),
				Status: r.Status, Source: quota.FromStore, DryRun: r.DryRun, HourlyLimit: r.HourlyLimit})
		}
		if len(page) < q.Limit {
			return t, nil
		}
		q.After = page[len(page)-1].Name
	}
}

// changeCounter passes an Accounts store through and counts the changes
// made through it, so that the tally cache knows its count is stale.
type changeCounter struct {
	quota.Accounts
	n *atomic.Uint64
}

// UpdateAccount implements quota.Accounts.
func (c changeCounter) UpdateAccount(ctx context.Context, name string, change func(quota.AccountRecord, bool) (quota.AccountRecord, quota.AuditEntry, error)) (quota.AccountRecord, error) {
	defer c.n.Add(1)
	return c.Accounts.UpdateAccount(ctx, name, change)
}

// DeleteAccount implements quota.Accounts.
func (c changeCounter) DeleteAccount(ctx context.Context, name string, check func(quota.AccountRecord) (quota.AuditEntry, error)) error {
	defer c.n.Add(1)
	return c.Accounts.DeleteAccount(ctx, name, check)
}

// Purchase implements quota.Accounts.
func (c changeCounter) Purchase(ctx context.Context, p quota.Purchase) (quota.Purchase, bool, error) {
	defer c.n.Add(1)
	return c.Accounts.Purchase(ctx, p)
}
