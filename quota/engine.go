// Package quota is relaycap's domain: accounts, daily limits, calendar days
// in one zone, and the reserve / commit / release cycle that counts relays.
// It does no I/O of its own and never reads the clock: every call that
// depends on the time takes it as now.
package quota

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Settings are the parts of the config the engine decides with. They are
// swapped as a whole on reload.
type Settings struct {
	Location          *time.Location
	DefaultDailyLimit int64
	// Accounts are the file-managed accounts; nil is none. The engine
	// shares the table, which nobody changes.
	Accounts *FileAccounts
	// DryRun computes and counts every limit decision but lets the relay
	// through (Decision.WouldRefuse says what enforcing would have done);
	// an Account's own DryRun does the same for that account.
	DryRun bool
}

// Txn is one message's reservations. It belongs to one milter session and
// must not be shared between goroutines. Each relay counts for the local day
// its recipient was accepted on, so a message whose RCPTs straddle midnight
// counts on both days.
type Txn struct {
	account string
	days    []DayCount // in order of first use; rarely more than one
}

// Account is the login the transaction reserves for ("" before the first).
func (t *Txn) Account() string { return t.account }

// Reserved is the number of relays the transaction holds.
func (t *Txn) Reserved() int64 {
	var n int64
	for _, dc := range t.days {
		n += dc.N
	}
	return n
}

func (t *Txn) add(day Day) {
	if last := len(t.days) - 1; last >= 0 && t.days[last].Day == day {
		t.days[last].N++
		return
	}
	t.days = append(t.days, DayCount{day, 1})
}

// Engine decides and counts relays. Reservations live in memory (one process
// owns the store); commits go to the Store. Every operation on one account
// holds that account's lock, so check-and-reserve is atomic and concurrent
// commits never conflict.
type Engine struct {
	store    Store
	accounts Accounts
	settings atomic.Pointer[Settings]

	mu    sync.Mutex
	accts map[string]*acctState
}

// acctState exists only while someone works on the account or holds a
// reservation for it, so memory grows with open transactions, not accounts.
type acctState struct {
	mu       sync.Mutex
	refs     int           // guarded by Engine.mu
	reserved map[Day]int64 // guarded by mu
}

// NewEngine returns an engine counting in store, with the store-managed
// accounts in accounts and the given settings.
func NewEngine(store Store, accounts Accounts, s Settings) (*Engine, error) {
	e := &Engine{store: store, accounts: accounts, accts: make(map[string]*acctState)}
	if err := e.SetSettings(s); err != nil {
		return nil, err
	}
	return e, nil
}

// SetSettings swaps the settings in atomically; they apply to the next call,
// also to today's usage (a lowered limit bites at once).
func (e *Engine) SetSettings(s Settings) error {
	if s.Location == nil {
		return errors.New("quota: settings without a time zone")
	}
	if s.DefaultDailyLimit < 0 {
		return errors.New("quota: negative default daily limit")
	}
	e.settings.Store(&s)
	return nil
}

// Lookup resolves a login on day: a file-managed account wins over a
// store-managed one; any other login gets the default daily limit. A
// store-managed account's TopUp is what was bought for day alone.
func (e *Engine) Lookup(login string, day Day) (Account, error) {
	return e.lookup(e.settings.Load(), login, day)
}

// resolve loads the settings once and resolves login on now's day with
// them, for a call that then decides with the same snapshot.
func (e *Engine) resolve(login string, now time.Time) (*Settings, Day, Account, error) {
	s := e.settings.Load()
	day := DayOf(now, s.Location)
	acct, err := e.lookup(s, login, day)
	return s, day, acct, err
}

// Each public call loads the settings once and decides with that snapshot,
// so a reload in the middle of a call cannot mix two zones or two limits.
func (e *Engine) lookup(s *Settings, login string, day Day) (Account, error) {
	name := NormalizeName(login)
	if a, ok := s.Accounts.Get(name); ok {
		return a, nil
	}
	// The milter and policy callbacks have no context of their own; the
	// store's own timeouts bound this read.
	r, ok, err := e.accounts.Account(context.Background(), name)
	if err != nil {
		return Account{}, fmt.Errorf("%w: account %q: %w", ErrStore, name, err)
	}
	if ok {
		return Account{Name: name, DailyLimit: r.DailyLimit, TopUp: r.TopUp(day), Status: r.Status, Source: FromStore}, nil
	}
	return Account{Name: name, DailyLimit: s.DefaultDailyLimit, Status: StatusActive, Source: FromDefault}, nil
}

// FileManaged reports whether name is an account of the config file, which
// the admin API must leave alone.
func (e *Engine) FileManaged(name string) bool {
	_, ok := e.settings.Load().Accounts.Get(NormalizeName(name))
	return ok
}

// FileAccounts is the table of file-managed accounts in force (nil if
// none); nobody changes it, a reload replaces it.
func (e *Engine) FileAccounts() *FileAccounts { return e.settings.Load().Accounts }

// Location is the zone days are counted in.
func (e *Engine) Location() *time.Location { return e.settings.Load().Location }

// Usage is login's day so far: what Check sees, without a verdict on one
// more relay, and with the usage also of a suspended account.
func (e *Engine) Usage(login string, now time.Time) (Decision, error) {
	s, day, acct, err := e.resolve(login, now)
	if err != nil {
		return Decision{}, err
	}
	used, err := e.store.Usage(acct.Name, day)
	if err != nil {
		return Decision{}, fmt.Errorf("%w: usage of %q on %s: %w", ErrStore, acct.Name, day, err)
	}
	st := e.lock(acct.Name)
	defer e.unlock(acct.Name, st)
	d := Decision{Account: acct, Day: day, Used: used, Reserved: st.reserved[day],
		Limit: acct.Limit(), ResetAt: NextMidnight(now, s.Location), DryRun: s.DryRun || acct.DryRun}
	d.Verdict = verdictOf(acct.Status)
	return d, nil
}

// Check answers whether login may relay one more recipient now, counting the
// reservations of open transactions. It changes nothing: the policy service
// uses it as the early gate.
func (e *Engine) Check(login string, now time.Time) (Decision, error) {
	s, day, acct, err := e.resolve(login, now)
	if err != nil {
		return Decision{}, err
	}
	st := e.lock(acct.Name)
	defer e.unlock(acct.Name, st)
	return e.decide(s, acct, day, st, now)
}

// Reserve holds one relay for login in txn if used + reserved + 1 <= limit.
// A refused reservation leaves txn as it was.
func (e *Engine) Reserve(txn *Txn, login string, now time.Time) (Decision, error) {
	s, day, acct, err := e.resolve(login, now)
	if err != nil {
		return Decision{}, err
	}
	if len(txn.days) > 0 && txn.account != acct.Name {
		return Decision{}, fmt.Errorf("quota: transaction of %q cannot reserve for %q", txn.account, acct.Name)
	}
	st := e.lock(acct.Name)
	defer e.unlock(acct.Name, st)
	d, err := e.decide(s, acct, day, st, now)
	if err != nil || !d.Allowed() {
		return d, err
	}
	st.reserved[day]++
	d.Reserved++
	txn.account = acct.Name
	txn.add(day)
	return d, nil
}

// Commit adds txn's reserved relays to their days' usage, durably and in
// one write, and empties txn. An account suspended or terminated since its
// recipients were reserved gets that verdict instead: the message is
// refused, its reservations are released and nothing is counted. On a
// store failure nothing is counted, the reservations are dropped, and the
// error wraps ErrStore. The decision reports the last day the transaction
// reserved on.
func (e *Engine) Commit(txn *Txn, now time.Time) (Decision, error) {
	if len(txn.days) == 0 {
		return Decision{}, nil
	}
	s := e.settings.Load()
	last := len(txn.days) - 1
	day := txn.days[last].Day
	acct, lookupErr := e.lookup(s, txn.account, day)
	st := e.lock(txn.account)
	defer e.unlock(txn.account, st)
	days := txn.days
	for _, dc := range days {
		st.drop(dc.Day, dc.N)
	}
	*txn = Txn{}
	if lookupErr != nil {
		return Decision{}, lookupErr
	}
	d := Decision{
		Verdict:  verdictOf(acct.Status),
		Account:  acct,
		Day:      day,
		Reserved: st.reserved[day],
		Limit:    acct.Limit(),
		ResetAt:  NextMidnight(now, s.Location),
	}
	if !d.Allowed() {
		return d, nil
	}
	totals, err := e.store.AddUsage(acct.Name, days)
	if err != nil {
		return Decision{}, fmt.Errorf("%w: commit %v relays of %q: %w", ErrStore, days, acct.Name, err)
	}
	d.Used = totals[last]
	return d, nil
}

// verdictOf is the verdict an account's status alone gives.
// A status it does not know (a damaged record) grants nothing.
func verdictOf(s Status) Verdict {
	switch s {
	case StatusActive:
		return Allowed
	case StatusSuspended:
		return Suspended
	case StatusTerminated:
		return Terminated
	}
	return NoVerdict
}

// Release drops txn's reservations without counting them (abort, RSET, a
// new MAIL, a lost connection) and empties txn.
func (e *Engine) Release(txn *Txn) {
	if len(txn.days) == 0 {
		return
	}
	st := e.lock(txn.account)
	for _, dc := range txn.days {
		st.drop(dc.Day, dc.N)
	}
	e.unlock(txn.account, st)
	*txn = Txn{}
}

// decide computes the verdict for one more relay with the settings s; the
// caller holds st.
func (e *Engine) decide(s *Settings, acct Account, day Day, st *acctState, now time.Time) (Decision, error) {
	d := Decision{
		Account:  acct,
		Day:      day,
		Limit:    acct.Limit(),
		Reserved: st.reserved[day],
		ResetAt:  NextMidnight(now, s.Location),
		DryRun:   s.DryRun || acct.DryRun,
	}
	switch {
	case acct.Status == StatusSuspended:
		d.Verdict = Suspended
		return d, nil
	case acct.Status == StatusTerminated:
		d.Verdict = Terminated
		return d, nil
	case d.Limit <= 0:
		d.Verdict = NotProvisioned
		return d, nil
	}
	used, err := e.store.Usage(acct.Name, day)
	if err != nil {
		return Decision{}, fmt.Errorf("%w: usage of %q on %s: %w", ErrStore, acct.Name, day, err)
	}
	d.Used = used
	if used+d.Reserved+1 > d.Limit {
		if !d.DryRun {
			d.Verdict = OverQuota
			return d, nil
		}
		d.WouldRefuse = OverQuota
	}
	// Only a relay that would be allowed needs a write at commit.
	if err := e.store.Writable(); err != nil {
		return Decision{}, fmt.Errorf("%w: %w", ErrStore, err)
	}
	d.Verdict = Allowed
	return d, nil
}

func (e *Engine) lock(name string) *acctState {
	e.mu.Lock()
	st := e.accts[name]
	if st == nil {
		st = &acctState{reserved: make(map[Day]int64)}
		e.accts[name] = st
	}
	st.refs++
	e.mu.Unlock()
	st.mu.Lock()
	return st
}

func (e *Engine) unlock(name string, st *acctState) {
	st.mu.Unlock()
	e.mu.Lock()
	st.refs--
	// With no refs left nobody holds st.mu, so reading reserved is safe.
	if st.refs == 0 && len(st.reserved) == 0 {
		delete(e.accts, name)
	}
	e.mu.Unlock()
}

func (st *acctState) drop(day Day, n int64) {
	if st.reserved[day] -= n; st.reserved[day] <= 0 {
		delete(st.reserved, day)
	}
}
