package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/relaycap/relaycap/quota"
)

// Store wraps a quota.Store (the hot-path counter) and counts and times
// every call, by operation and result. It changes nothing else: the wrapped
// store's atomicity and durability are the wrapper's.
type Store struct {
	next quota.Store
	// Each call's series, bound once: a map lookup by name cost as much as
	// the cached usage read it counted.
	usage, addUsage, writable storeOp
}

// opTable holds each store operation's series, bound once.
type opTable map[string]storeOp

type storeOp struct {
	ok, err *stripedCounter
	seconds prometheus.Observer
}

func (m *Metrics) opTable() opTable {
	t := make(opTable, len(storeOps))
	for _, op := range storeOps {
		o := storeOp{ok: m.storeOps.With(op, "ok"), err: m.storeOps.With(op, "error")}
		if op != "writable" && op != "usage" { // counted, not timed
			o.seconds = m.storeSeconds.WithLabelValues(op)
		}
		t[op] = o
	}
	return t
}

// done records one call of op that began at start.
func (t opTable) done(op string, start time.Time, err error) { t[op].done(start, err) }

// count records one call of op, untimed.
func (t opTable) count(op string, err error) { t[op].count(err) }

// count records one call, untimed.
func (o storeOp) count(err error) {
	if err != nil {
		o.err.Inc()
		return
	}
	o.ok.Inc()
}

// done records one call that began at start.
func (o storeOp) done(start time.Time, err error) {
	o.seconds.Observe(time.Since(start).Seconds())
	o.count(err)
}

// WrapStore returns s instrumented with m's store metrics.
func (m *Metrics) WrapStore(s quota.Store) *Store {
	t := m.opTable()
	return &Store{next: s, usage: t["usage"], addUsage: t["add_usage"], writable: t["writable"]}
}

// Usage implements quota.Store. It is counted but not timed, as Writable
// is: it runs for every policy check and RCPT, most often answered from
// the store's memory, and two clock reads would cost more than the call.
func (s *Store) Usage(account string, day quota.Day, now time.Time) (int64, error) {
	n, err := s.next.Usage(account, day, now)
	s.usage.count(err)
	return n, err
}

// AddUsage implements quota.Store.
func (s *Store) AddUsage(account string, add []quota.DayCount) ([]int64, error) {
	start := time.Now()
	totals, err := s.next.AddUsage(account, add)
	s.addUsage.done(start, err)
	return totals, err
}

// Writable implements quota.Store. It is counted but not timed: it runs
// for every allowed recipient, answers from a cached free-space check,
// and this machine's clock reads would cost more than the call.
func (s *Store) Writable(now time.Time) error {
	err := s.next.Writable(now)
	s.writable.count(err)
	return err
}

// Accounts wraps a quota.Accounts and times the calls that change or
// resolve an account; the reads of history and the audit trail pass
// through untimed.
type Accounts struct {
	quota.Accounts
	ops opTable
}

// WrapAccounts returns a instrumented with m's store metrics.
func (m *Metrics) WrapAccounts(a quota.Accounts) *Accounts {
	return &Accounts{Accounts: a, ops: m.opTable()}
}

// Account implements quota.Accounts.
func (a *Accounts) Account(ctx context.Context, name string) (quota.AccountRecord, bool, error) {
	start := time.Now()
	r, ok, err := a.Accounts.Account(ctx, name)
	a.ops.done("account", start, err)
	return r, ok, err
}

// ListAccounts implements quota.Accounts.
func (a *Accounts) ListAccounts(ctx context.Context, q quota.ListQuery) ([]quota.AccountRecord, error) {
	start := time.Now()
	rs, err := a.Accounts.ListAccounts(ctx, q)
	a.ops.done("list_accounts", start, err)
	return rs, err
}

// UpdateAccount implements quota.Accounts.
func (a *Accounts) UpdateAccount(ctx context.Context, name string, change func(quota.AccountRecord, bool) (quota.AccountRecord, quota.AuditEntry, error)) (quota.AccountRecord, error) {
	start := time.Now()
	r, err := a.Accounts.UpdateAccount(ctx, name, change)
	a.ops.done("update_account", start, err)
	return r, err
}

// DeleteAccount implements quota.Accounts.
func (a *Accounts) DeleteAccount(ctx context.Context, name string, check func(quota.AccountRecord) (quota.AuditEntry, error)) error {
	start := time.Now()
	err := a.Accounts.DeleteAccount(ctx, name, check)
	a.ops.done("delete_account", start, err)
	return err
}

// Purchase implements quota.Accounts.
func (a *Accounts) Purchase(ctx context.Context, p quota.Purchase) (quota.Purchase, bool, error) {
	start := time.Now()
	first, replay, err := a.Accounts.Purchase(ctx, p)
	a.ops.done("purchase", start, err)
	return first, replay, err
}

// Top implements quota.Accounts.
func (a *Accounts) Top(ctx context.Context, day quota.Day, n int) ([]quota.AccountUsage, error) {
	start := time.Now()
	top, err := a.Accounts.Top(ctx, day, n)
	a.ops.done("top", start, err)
	return top, err
}
