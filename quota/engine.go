// Package quota is relaycap's domain: accounts, daily limits, calendar days
// in one zone, and the reserve / commit / release cycle that counts relays.
// It does no I/O of its own and never reads the clock: every call that
// depends on the time takes it as now. The atomicity of the count belongs
// to a Counter (Local for one host, a shared store for several).
package quota

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strconv"
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
	// HoldTTL is how long a reservation lasts without its commit: it must
	// outlast the longest silence between RCPT and end of message.
	HoldTTL time.Duration
}

// Txn is one message's reservations. It belongs to one milter session and
// must not be shared between goroutines. Each relay counts for the local day
// its recipient was accepted on, so a message whose RCPTs straddle midnight
// counts on both days.
type Txn struct {
	id      string // unique across hosts: the commit's idempotency key
	account string
	holds   []Hold
}

// Account is the login the transaction reserves for ("" before the first).
func (t *Txn) Account() string { return t.account }

// Reserved is the number of relays the transaction holds.
func (t *Txn) Reserved() int64 {
	var n int64
	for _, h := range t.holds {
		n += h.N
	}
	return n
}

// Engine decides and counts relays: it resolves accounts, applies their
// status and the calendar, and asks its Counter for the count, which is
// atomic there.
type Engine struct {
	counter  Counter
	accounts Accounts
	settings atomic.Pointer[Settings]

	idPrefix string // random per engine, so hold ids are unique across hosts
	nextTxn  atomic.Uint64
}

// NewEngine returns an engine counting on c, with the store-managed
// accounts in accounts and the given settings.
func NewEngine(c Counter, accounts Accounts, s Settings) (*Engine, error) {
	var r [8]byte
	if _, err := rand.Read(r[:]); err != nil {
		return nil, err
	}
	e := &Engine{counter: c, accounts: accounts, idPrefix: hex.EncodeToString(r[:]) + "-"}
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
	if s.HoldTTL <= 0 {
		return errors.New("quota: settings without a hold ttl")
	}
	e.settings.Store(&s)
	return nil
}

// Lookup resolves a login on day: a file-managed account wins over a
// store-managed one; any other login gets the default daily limit. A
// store-managed account's TopUp is what was bought for day alone.
func (e *Engine) Lookup(ctx context.Context, login string, day Day) (Account, error) {
	return e.lookup(ctx, e.settings.Load(), login, day)
}

// Each public call loads the settings once and decides with that snapshot,
// so a reload in the middle of a call cannot mix two zones or two limits.
func (e *Engine) lookup(ctx context.Context, s *Settings, login string, day Day) (Account, error) {
	name := NormalizeName(login)
	if a, ok := s.Accounts.Get(name); ok {
		return a, nil
	}
	r, ok, err := e.accounts.Account(ctx, name)
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

// Usage is login's day so far on every host: what Check sees, without a
// verdict on one more relay, and with the usage also of a suspended account.
func (e *Engine) Usage(ctx context.Context, login string, now time.Time) (Decision, error) {
	s := e.settings.Load()
	d, err := e.start(ctx, s, login, now)
	if err != nil {
		return Decision{}, err
	}
	c, err := e.counter.Peek(ctx, d.Account.Name, d.Day, now)
	if err != nil && !errors.Is(err, ErrReadOnly) {
		return Decision{}, fmt.Errorf("%w: usage of %q on %s: %w", ErrStore, d.Account.Name, d.Day, err)
	}
	d.Used, d.Reserved = c.Used, c.Reserved
	d.Verdict = verdictOf(d.Account.Status)
	return d, nil
}

// Check answers whether login may relay one more recipient now, counting the
// reservations of open transactions on every host. It changes nothing: the
// policy service uses it as the early gate.
func (e *Engine) Check(ctx context.Context, login string, now time.Time) (Decision, error) {
	s := e.settings.Load()
	d, err := e.start(ctx, s, login, now)
	if err != nil || d.Verdict != Allowed {
		return d, err
	}
	c, err := e.counter.Peek(ctx, d.Account.Name, d.Day, now)
	if err != nil && !errors.Is(err, ErrReadOnly) {
		return Decision{}, fmt.Errorf("%w: usage of %q on %s: %w", ErrStore, d.Account.Name, d.Day, err)
	}
	d.Used, d.Reserved = c.Used, c.Reserved
	if c.Used+c.Reserved+1 > d.Limit {
		if !d.DryRun {
			d.Verdict = OverQuota
			return d, nil
		}
		d.WouldRefuse = OverQuota
	}
	if err != nil { // read-only: the relay would be allowed, its commit would fail
		return Decision{}, fmt.Errorf("%w: %w", ErrStore, err)
	}
	return d, nil
}

// Reserve holds one relay for login in txn if used + reserved + 1 <= limit.
// A refused reservation leaves txn as it was.
func (e *Engine) Reserve(ctx context.Context, txn *Txn, login string, now time.Time) (Decision, error) {
	s := e.settings.Load()
	d, err := e.start(ctx, s, login, now)
	if err != nil {
		return Decision{}, err
	}
	if len(txn.holds) > 0 && txn.account != d.Account.Name {
		return Decision{}, fmt.Errorf("quota: transaction of %q cannot reserve for %q", txn.account, d.Account.Name)
	}
	if d.Verdict != Allowed {
		return d, nil
	}
	var buf [64]byte
	if txn.id == "" {
		txn.id = string(strconv.AppendUint(append(buf[:0], e.idPrefix...), e.nextTxn.Add(1), 36))
	}
	// A hold id is reused after a failed call: if the store granted it
	// anyway, the retry finds it instead of holding a second relay.
	h := Hold{
		ID:      string(strconv.AppendInt(append(append(buf[:0], txn.id...), '.'), int64(len(txn.holds)), 10)),
		Account: d.Account.Name, Day: d.Day, N: 1,
		Expires: now.Add(s.HoldTTL),
	}
	c, granted, err := e.counter.Reserve(ctx, h, countLimit(d), now)
	if err != nil {
		return Decision{}, fmt.Errorf("%w: reserve for %q on %s: %w", ErrStore, d.Account.Name, d.Day, err)
	}
	d.Used, d.Reserved = c.Used, c.Reserved
	if !granted {
		d.Verdict = OverQuota
		return d, nil
	}
	if c.Used+c.Reserved > d.Limit { // only in dry run
		d.WouldRefuse = OverQuota
	}
	txn.account = d.Account.Name
	txn.holds = append(txn.holds, h)
	return d, nil
}

// Commit adds txn's reserved relays to their days' usage, durably and in
// one call of the counter, and empties txn. An account suspended or
// terminated since its recipients were reserved gets that verdict instead:
// the message is refused, its reservations are released and nothing is
// counted. On a failure nothing is counted, the reservations are released,
// and the error wraps ErrStore (and ErrHoldLost for a hold that expired
// with no room left). The decision reports the last day the transaction
// reserved on.
func (e *Engine) Commit(ctx context.Context, txn *Txn, now time.Time) (Decision, error) {
	if len(txn.holds) == 0 {
		return Decision{}, nil
	}
	s := e.settings.Load()
	id, holds := txn.id, txn.holds
	*txn = Txn{}
	day := holds[len(holds)-1].Day
	acct, err := e.lookup(ctx, s, holds[0].Account, day)
	if err != nil {
		e.release(ctx, holds)
		return Decision{}, err
	}
	d := Decision{
		Verdict: verdictOf(acct.Status),
		Account: acct,
		Day:     day,
		Limit:   acct.Limit(),
		ResetAt: NextMidnight(now, s.Location),
		DryRun:  s.DryRun || acct.DryRun,
	}
	if !d.Allowed() {
		e.release(ctx, holds)
		return d, nil
	}
	totals, err := e.counter.Commit(ctx, id, holds, countLimit(d), now)
	if err != nil {
		// The commit may have failed before the holds were consumed.
		e.release(ctx, holds)
		return Decision{}, fmt.Errorf("%w: commit %d relays of %q: %w", ErrStore, len(holds), acct.Name, err)
	}
	d.Used = totals[len(totals)-1].N
	return d, nil
}

// Release drops txn's reservations without counting them (abort, RSET, a
// new MAIL, a lost connection) and empties txn. A failure only strands the
// holds until they expire.
func (e *Engine) Release(ctx context.Context, txn *Txn) error {
	if len(txn.holds) == 0 {
		return nil
	}
	holds := txn.holds
	*txn = Txn{}
	if err := e.counter.Release(ctx, holds); err != nil {
		return fmt.Errorf("%w: release %d relays of %q: %w", ErrStore, len(holds), holds[0].Account, err)
	}
	return nil
}

// release drops holds after a commit that did not happen; the holds expire
// anyway if it fails, so there is nothing more to do about an error.
func (e *Engine) release(ctx context.Context, holds []Hold) {
	e.counter.Release(context.WithoutCancel(ctx), holds)
}

// noLimit is the limit a dry run counts against: none a day can reach.
const noLimit = math.MaxInt64 / 4

// countLimit is the limit the counter enforces for d: its own, or none in
// dry run, which counts past it and only reports (WouldRefuse).
func countLimit(d Decision) int64 {
	if d.DryRun {
		return noLimit
	}
	return d.Limit
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

// start resolves login on now's day and applies its status and limit: the
// verdict is Allowed only if the count is still to be asked.
func (e *Engine) start(ctx context.Context, s *Settings, login string, now time.Time) (Decision, error) {
	day := DayOf(now, s.Location)
	acct, err := e.lookup(ctx, s, login, day)
	if err != nil {
		return Decision{}, err
	}
	d := Decision{
		Verdict: verdictOf(acct.Status),
		Account: acct,
		Day:     day,
		Limit:   acct.Limit(),
		ResetAt: NextMidnight(now, s.Location),
		DryRun:  s.DryRun || acct.DryRun,
	}
	if d.Verdict == Allowed && d.Limit <= 0 {
		d.Verdict = NotProvisioned
	}
	return d, nil
}
