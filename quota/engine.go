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
	// DefaultHourlyLimit caps one clock hour of every account without an
	// HourlyLimit of its own; 0 = none.
	DefaultHourlyLimit int64
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
	hours   []Hold // the same relays in their clock hours, with an hourly limit
	// hourCap is the limit the hours were reserved against (noLimit in dry
	// run): a store-managed record, read only with the day's commit, has
	// it for its hours' commit.
	hourCap int64
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
	days     DayClock
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
	if s.DefaultHourlyLimit < 0 {
		return errors.New("quota: negative default hourly limit")
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
	return accountOf(s, name, r, ok, day), nil
}

// accountOf is the account of a login the file does not name: its store
// record if found, else the default limit.
func accountOf(s *Settings, name string, r AccountRecord, found bool, day Day) Account {
	if found {
		return Account{Name: name, DailyLimit: r.DailyLimit, TopUp: r.TopUp(day), Status: r.Status, Source: FromStore,
			DryRun: r.DryRun, HourlyLimit: r.HourlyLimit}
	}
	return Account{Name: name, DailyLimit: s.DefaultDailyLimit, Status: StatusActive, Source: FromDefault}
}

// recordCounter is the counter as a RecordCounter when login's record is
// to be read with its count (a login the file does not name).
func (e *Engine) recordCounter(s *Settings, login string) (RecordCounter, string, bool) {
	rc, ok := e.counter.(RecordCounter)
	if !ok {
		return nil, "", false
	}
	name := NormalizeName(login)
	if _, file := s.Accounts.Get(name); file {
		return nil, "", false
	}
	return rc, name, true
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
	if d.Hour.Limit > 0 {
		hc, err := e.counter.Peek(ctx, d.Account.Name, d.Hour.Window, now)
		if err != nil && !errors.Is(err, ErrReadOnly) {
			return Decision{}, fmt.Errorf("%w: usage of %q in %s: %w", ErrStore, d.Account.Name, d.Hour.Window, err)
		}
		d.Hour.Used, d.Hour.Reserved = hc.Used, hc.Reserved
	}
	d.Verdict = verdictOf(d.Account.Status)
	return d, nil
}

// Check answers whether login may relay one more recipient now, counting the
// reservations of open transactions on every host. It changes nothing: the
// policy service uses it as the early gate.
func (e *Engine) Check(ctx context.Context, login string, now time.Time) (Decision, error) {
	s := e.settings.Load()
	var d Decision
	var c Count
	var err error
	if rc, name, ok := e.recordCounter(s, login); ok {
		day, resetAt := e.days.Of(now, s.Location)
		var r AccountRecord
		var found bool
		c, r, found, err = rc.PeekRecord(ctx, name, day, now)
		if err != nil && !errors.Is(err, ErrReadOnly) {
			return Decision{}, fmt.Errorf("%w: usage of %q on %s: %w", ErrStore, name, day, err)
		}
		if d = decide(s, accountOf(s, name, r, found, day), day, resetAt, now); d.Verdict != Allowed {
			return d, nil
		}
	} else {
		if d, err = e.start(ctx, s, login, now); err != nil || d.Verdict != Allowed {
			return d, err
		}
		c, err = e.counter.Peek(ctx, d.Account.Name, d.Day, now)
		if err != nil && !errors.Is(err, ErrReadOnly) {
			return Decision{}, fmt.Errorf("%w: usage of %q on %s: %w", ErrStore, d.Account.Name, d.Day, err)
		}
	}
	d.Used, d.Reserved = c.Used, c.Reserved
	if c.Used+c.Reserved+1 > d.Limit {
		if !d.DryRun {
			d.Verdict = OverQuota
			return d, nil
		}
		d.WouldRefuse = OverQuota
	}
	readOnly := err
	if d.Hour.Limit > 0 {
		hc, err := e.counter.Peek(ctx, d.Account.Name, d.Hour.Window, now)
		if err != nil && !errors.Is(err, ErrReadOnly) {
			return Decision{}, fmt.Errorf("%w: usage of %q in %s: %w", ErrStore, d.Account.Name, d.Hour.Window, err)
		}
		d.Hour.Used, d.Hour.Reserved = hc.Used, hc.Reserved
		if hc.Used+hc.Reserved+1 > d.Hour.Limit {
			if !d.DryRun {
				d.Verdict = OverHourly
				return d, nil
			}
			if d.WouldRefuse == NoVerdict {
				d.WouldRefuse = OverHourly
			}
		}
	}
	if readOnly != nil { // read-only: the relay would be allowed, its commit would fail
		return Decision{}, fmt.Errorf("%w: %w", ErrStore, readOnly)
	}
	return d, nil
}

// Reserve holds one relay for login in txn if used + reserved + 1 <= limit.
// A refused reservation leaves txn as it was.
func (e *Engine) Reserve(ctx context.Context, txn *Txn, login string, now time.Time) (Decision, error) {
	s := e.settings.Load()
	if rc, name, ok := e.recordCounter(s, login); ok {
		return e.reserveRecord(ctx, rc, s, txn, name, now)
	}
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
	h := e.nextHold(txn, s, d.Account.Name, d.Day, now)
	c, granted, err := e.counter.Reserve(ctx, h, countLimit(d), now)
	if err != nil {
		return Decision{}, fmt.Errorf("%w: reserve for %q on %s: %w", ErrStore, d.Account.Name, d.Day, err)
	}
	d.Used, d.Reserved = c.Used, c.Reserved
	return e.takeHold(ctx, d, txn, h, granted, now)
}

// takeHold ends a reservation of h that the day's count granted or not:
// the verdict, dry run's would-refuse, the hour's hold, and h into txn.
func (e *Engine) takeHold(ctx context.Context, d Decision, txn *Txn, h Hold, granted bool, now time.Time) (Decision, error) {
	if !granted {
		d.Verdict = OverQuota
		return d, nil
	}
	if d.Used+d.Reserved > d.Limit { // only in dry run
		d.WouldRefuse = OverQuota
	}
	if ok, err := e.reserveHour(ctx, &d, txn, h, now); err != nil || !ok {
		return d, err
	}
	txn.account = h.Account
	txn.holds = append(txn.holds, h)
	return d, nil
}

// reserveHour holds h's relay in its clock hour too, when the account
// has an hourly limit. The hour is held after the day: a relay refused by
// either holds neither (h is released), and neither limit is ever passed
// (each is atomic in the counter; a race between them can only refuse too
// early). It reports whether the relay may go; d says why not.
func (e *Engine) reserveHour(ctx context.Context, d *Decision, txn *Txn, h Hold, now time.Time) (bool, error) {
	if d.Hour.Limit <= 0 {
		return true, nil
	}
	hh := Hold{ID: h.ID + "h", Account: h.Account, Day: d.Hour.Window, N: 1, Expires: h.Expires}
	hc, granted, err := e.counter.Reserve(ctx, hh, hourLimit(*d), now)
	if err != nil {
		e.release(ctx, []Hold{h})
		*d = Decision{}
		return false, fmt.Errorf("%w: reserve for %q in %s: %w", ErrStore, h.Account, hh.Day, err)
	}
	d.Hour.Used, d.Hour.Reserved = hc.Used, hc.Reserved
	if !granted {
		e.release(ctx, []Hold{h})
		d.Reserved -= h.N
		d.Verdict = OverHourly
		return false, nil
	}
	if hc.Used+hc.Reserved > d.Hour.Limit && d.WouldRefuse == NoVerdict { // only in dry run
		d.WouldRefuse = OverHourly
	}
	txn.hours = append(txn.hours, hh)
	txn.hourCap = hourLimit(*d)
	return true, nil
}

// commitHours counts a transaction's relays in their clock hours, before
// its days: if the day's commit then fails, the hour has counted relays
// that did not go out, which brakes early, never late. The limit only
// matters for a hold that expired and is reserved again.
func (e *Engine) commitHours(ctx context.Context, id string, hours []Hold, limit int64, dryRun bool, now time.Time) error {
	if len(hours) == 0 {
		return nil
	}
	if limit <= 0 || dryRun { // no hourly limit any more (a reload), or dry run
		limit = noLimit
	}
	if _, err := e.counter.Commit(ctx, id+"h", hours, limit, now); err != nil {
		return fmt.Errorf("%w: commit %d relays of %q in their hours: %w", ErrStore, len(hours), hours[0].Account, err)
	}
	return nil
}

// nextHold is the hold of txn's next relay.
func (e *Engine) nextHold(txn *Txn, s *Settings, account string, day Day, now time.Time) Hold {
	var buf [64]byte
	if txn.id == "" {
		txn.id = string(strconv.AppendUint(append(buf[:0], e.idPrefix...), e.nextTxn.Add(1), 36))
	}
	// A hold id is reused after a failed call: if the store granted it
	// anyway, the retry finds it instead of holding a second relay.
	return Hold{
		ID:      string(strconv.AppendInt(append(append(buf[:0], txn.id...), '.'), int64(len(txn.holds)), 10)),
		Account: account, Day: day, N: 1,
		Expires: now.Add(s.HoldTTL),
	}
}

// reserveRecord is Reserve in one call that reads the account's record
// and holds the relay if the record allows it; the engine then decides
// with that record as with one it looked up.
func (e *Engine) reserveRecord(ctx context.Context, rc RecordCounter, s *Settings, txn *Txn, name string, now time.Time) (Decision, error) {
	if len(txn.holds) > 0 && txn.account != name {
		return Decision{}, fmt.Errorf("quota: transaction of %q cannot reserve for %q", txn.account, name)
	}
	day, resetAt := e.days.Of(now, s.Location)
	h := e.nextHold(txn, s, name, day, now)
	c, r, found, granted, err := rc.ReserveRecord(ctx, h, s.DefaultDailyLimit, s.DryRun, now)
	if err != nil {
		return Decision{}, fmt.Errorf("%w: reserve for %q on %s: %w", ErrStore, name, day, err)
	}
	d := decide(s, accountOf(s, name, r, found, day), day, resetAt, now)
	d.Used, d.Reserved = c.Used, c.Reserved
	if d.Verdict != Allowed {
		if granted { // the store and the engine disagree: trust the engine
			e.release(ctx, []Hold{h})
			d.Reserved -= h.N
		}
		return d, nil
	}
	return e.takeHold(ctx, d, txn, h, granted, now)
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
	id, holds, hours, hourCap := txn.id, txn.holds, txn.hours, txn.hourCap
	*txn = Txn{}
	day := holds[len(holds)-1].Day
	if rc, name, ok := e.recordCounter(s, holds[0].Account); ok {
		// The record is read with the day's commit, after the hours: they
		// keep the limit they were reserved against.
		if err := e.commitHours(ctx, id, hours, hourCap, false, now); err != nil {
			e.release(ctx, append(holds, hours...))
			return Decision{}, err
		}
		return e.commitRecord(ctx, rc, s, id, holds, name, day, now)
	}
	acct, err := e.lookup(ctx, s, holds[0].Account, day)
	if err != nil {
		e.release(ctx, append(holds, hours...))
		return Decision{}, err
	}
	d := commitDecision(s, acct, day, now)
	if !d.Allowed() {
		e.release(ctx, append(holds, hours...))
		return d, nil
	}
	if err := e.commitHours(ctx, id, hours, hourlyLimit(s, acct), d.DryRun, now); err != nil {
		e.release(ctx, append(holds, hours...))
		return Decision{}, err
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

// commitDecision is what a commit answers for acct on day before the count:
// the account's status decides whether anything is counted at all.
func commitDecision(s *Settings, acct Account, day Day, now time.Time) Decision {
	return Decision{
		Verdict: verdictOf(acct.Status),
		Account: acct,
		Day:     day,
		Limit:   acct.Limit(),
		ResetAt: NextMidnight(now, s.Location),
		DryRun:  s.DryRun || acct.DryRun,
	}
}

// commitRecord is Commit in one call that reads the account's record: a
// status that no longer allows relaying (a suspension since the RCPT)
// counts nothing, as with a record looked up first.
func (e *Engine) commitRecord(ctx context.Context, rc RecordCounter, s *Settings, id string, holds []Hold, name string, day Day, now time.Time) (Decision, error) {
	totals, r, found, err := rc.CommitRecord(ctx, id, holds, s.DefaultDailyLimit, s.DryRun, now)
	if err != nil {
		e.release(ctx, holds)
		return Decision{}, fmt.Errorf("%w: commit %d relays of %q: %w", ErrStore, len(holds), name, err)
	}
	acct := accountOf(s, name, r, found, day)
	d := commitDecision(s, acct, day, now)
	if !d.Allowed() {
		e.release(ctx, holds)
		return d, nil
	}
	if len(totals) == 0 {
		e.release(ctx, holds)
		return Decision{}, fmt.Errorf("%w: the store refused the commit of %q, which is active", ErrStore, name)
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
	holds := append(txn.holds, txn.hours...)
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
// hourLimit is the limit an hour's hold is reserved against: none in dry
// run, which counts past it and only reports.
func hourLimit(d Decision) int64 {
	if d.DryRun {
		return noLimit
	}
	return d.Hour.Limit
}

// hourlyLimit is acct's hourly limit: its own, or the default.
func hourlyLimit(s *Settings, acct Account) int64 {
	if acct.HourlyLimit > 0 {
		return acct.HourlyLimit
	}
	return s.DefaultHourlyLimit
}

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
	day, resetAt := e.days.Of(now, s.Location)
	acct, err := e.lookup(ctx, s, login, day)
	if err != nil {
		return Decision{}, err
	}
	return decide(s, acct, day, resetAt, now), nil
}

// decide applies acct's status and limit on day, which ends at resetAt,
// and its hourly limit at now: the verdict is Allowed only if the count
// is still to be asked.
func decide(s *Settings, acct Account, day Day, resetAt, now time.Time) Decision {
	d := Decision{
		Verdict: verdictOf(acct.Status),
		Account: acct,
		Day:     day,
		Limit:   acct.Limit(),
		ResetAt: resetAt,
		DryRun:  s.DryRun || acct.DryRun,
	}
	if d.Verdict == Allowed && d.Limit <= 0 {
		d.Verdict = NotProvisioned
	}
	if l := hourlyLimit(s, acct); l > 0 {
		d.Hour = HourCount{Window: HourOf(now, s.Location), Limit: l, ResetAt: NextHour(now, s.Location)}
	}
	return d
}
