package quota

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	_ "time/tzdata"
)

// memStore is a map-backed Store for the engine's unit tests.
type memStore struct {
	Accounts
	mu       sync.Mutex
	usage    map[string]int64
	accounts map[string]AccountRecord
	fail     error
	readOnly error // Writable's answer: a disk low on space
	// onAccount runs at the start of every Account call, outside mu.
	onAccount func()
}

func newMemStore() *memStore {
	return &memStore{usage: map[string]int64{}, accounts: map[string]AccountRecord{}}
}

func (m *memStore) Usage(a string, d Day, _ time.Time) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.usage[a+"|"+string(d)], m.fail
}

func (m *memStore) Writable(time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.readOnly != nil {
		return m.readOnly
	}
	return m.fail
}

func (m *memStore) AddUsage(a string, add []DayCount) ([]int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return nil, m.fail
	}
	var totals []int64
	for _, dc := range add {
		m.usage[a+"|"+string(dc.Day)] += dc.N
		totals = append(totals, m.usage[a+"|"+string(dc.Day)])
	}
	return totals, nil
}

// Account is the one Accounts method the engine calls; the embedded nil
// Accounts panics on any other.
func (m *memStore) Account(_ context.Context, n string) (AccountRecord, bool, error) {
	if m.onAccount != nil {
		m.onAccount()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	a, ok := m.accounts[n]
	return a, ok, m.fail
}

func (m *memStore) putAccount(a AccountRecord) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.accounts[a.Name] = a
}

var newYork = mustZone("America/New_York")

func mustZone(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return loc
}

func at(s string) time.Time {
	t, err := time.ParseInLocation("2006-01-02 15:04:05", s, newYork)
	if err != nil {
		panic(err)
	}
	return t
}

// table is the FileAccounts of accounts; an unset status is active.
func table(accounts map[string]Account) *FileAccounts {
	var b FileAccountsBuilder
	for name, a := range accounts {
		if a.Status == "" {
			a.Status = StatusActive
		}
		b.Add([]byte(NormalizeName(name)), a.DailyLimit, a.Status, a.DryRun)
		b.SetHourly(a.HourlyLimit)
	}
	t, _ := b.Build()
	return t
}

func newEngine(t *testing.T, accounts map[string]Account) (*Engine, *memStore) {
	t.Helper()
	st := newMemStore()
	e, err := NewEngine(NewLocal(st, time.Minute), st, Settings{HoldTTL: time.Hour, Location: newYork, Accounts: table(accounts)})
	if err != nil {
		t.Fatal(err)
	}
	return e, st
}

// send reserves n relays for login in one transaction and commits them,
// returning how many were accepted.
func send(t *testing.T, e *Engine, login string, n int, now time.Time) int {
	t.Helper()
	var txn Txn
	ok := 0
	for range n {
		d, err := e.Reserve(ctx, &txn, login, now)
		if err != nil {
			t.Fatal(err)
		}
		if d.Allowed() {
			ok++
		}
	}
	if _, err := e.Commit(ctx, &txn, now); err != nil {
		t.Fatal(err)
	}
	return ok
}

// check is e.Check that fails the test on an error, so no assertion ever
// reads the zero Decision an error comes with.
func check(t *testing.T, e *Engine, login string, now time.Time) Decision {
	t.Helper()
	d, err := e.Check(ctx, login, now)
	if err != nil {
		t.Fatalf("check %s: %v", login, err)
	}
	return d
}

// reserve is e.Reserve that fails the test on an error.
func reserve(t *testing.T, e *Engine, txn *Txn, login string, now time.Time) Decision {
	t.Helper()
	d, err := e.Reserve(ctx, txn, login, now)
	if err != nil {
		t.Fatalf("reserve for %s: %v", login, err)
	}
	return d
}

// setSettings is e.SetSettings that fails the test on an error.
func setSettings(t *testing.T, e *Engine, s Settings) {
	t.Helper()
	if err := e.SetSettings(s); err != nil {
		t.Fatal(err)
	}
}

func TestDayLengthsFollowTheZone(t *testing.T) {
	cases := []struct {
		day   string
		hours float64
	}{
		{"2026-03-08 12:00:00", 23}, // spring forward
		{"2026-11-01 12:00:00", 25}, // fall back
		{"2026-11-27 12:00:00", 24},
	}
	for _, c := range cases {
		noon := at(c.day)
		start, err := DayOf(noon, newYork).Time(newYork)
		if err != nil {
			t.Fatal(err)
		}
		if got := NextMidnight(noon, newYork).Sub(start).Hours(); got != c.hours {
			t.Errorf("%s: day lasts %v h, want %v", c.day, got, c.hours)
		}
	}
}

func TestMidnightEdge(t *testing.T) {
	e, _ := newEngine(t, map[string]Account{"alice": {DailyLimit: 1}})
	if got := send(t, e, "alice", 1, at("2026-11-27 23:59:59")); got != 1 {
		t.Fatalf("23:59:59: accepted %d, want 1", got)
	}
	if got := send(t, e, "alice", 1, at("2026-11-27 23:59:59").Add(999*time.Millisecond)); got != 0 {
		t.Fatalf("23:59:59.999: accepted %d, want 0 (same day, limit used)", got)
	}
	if got := send(t, e, "alice", 1, at("2026-11-28 00:00:00")); got != 1 {
		t.Fatalf("00:00:00: accepted %d, want 1 (new day)", got)
	}
}

func TestDSTDaysResetAtLocalMidnight(t *testing.T) {
	e, st := newEngine(t, map[string]Account{"alice": {DailyLimit: 2}})
	// 2026-03-08 has 23 hours: 01:59:59 EST is followed by 03:00:00 EDT.
	send(t, e, "alice", 2, at("2026-03-08 00:30:00"))
	if got := send(t, e, "alice", 1, at("2026-03-08 23:59:59")); got != 0 {
		t.Fatalf("23-hour day: late relay accepted, want refused")
	}
	if got := send(t, e, "alice", 1, at("2026-03-09 00:00:00")); got != 1 {
		t.Fatalf("after the 23-hour day: accepted %d, want 1", got)
	}
	// 2026-11-01 has 25 hours: 01:00-01:59 happens twice. The second 01:30
	// (EST) is still Nov 1.
	firstOneThirty := at("2026-11-01 01:30:00")
	secondOneThirty := firstOneThirty.Add(time.Hour)
	send(t, e, "alice", 1, firstOneThirty)
	send(t, e, "alice", 1, secondOneThirty)
	if got := st.usage["alice|2026-11-01"]; got != 2 {
		t.Fatalf("25-hour day: usage %d, want both 01:30s counted on 2026-11-01", got)
	}
	d, err := e.Check(ctx, "alice", at("2026-11-01 23:00:00"))
	if err != nil {
		t.Fatal(err)
	}
	if d.Verdict != OverQuota || d.Resets() != "2026-11-02 00:00 EST" {
		t.Fatalf("check = %v resets %s, want over_quota resetting 2026-11-02 00:00 EST", d.Verdict, d.Resets())
	}
}

func TestLimitChangesApplyAtOnce(t *testing.T) {
	e, _ := newEngine(t, map[string]Account{"alice": {DailyLimit: 5}})
	now := at("2026-11-27 10:00:00")
	if got := send(t, e, "alice", 7, now); got != 5 {
		t.Fatalf("limit 5: accepted %d", got)
	}
	if err := e.SetSettings(Settings{HoldTTL: time.Hour, Location: newYork, Accounts: table(map[string]Account{"alice": {DailyLimit: 8}})}); err != nil {
		t.Fatal(err)
	}
	if got := send(t, e, "alice", 7, now); got != 3 {
		t.Fatalf("raised to 8: accepted %d more, want 3", got)
	}
	if err := e.SetSettings(Settings{HoldTTL: time.Hour, Location: newYork, Accounts: table(map[string]Account{"alice": {DailyLimit: 2}})}); err != nil {
		t.Fatal(err)
	}
	d, err := e.Check(ctx, "alice", now)
	if err != nil {
		t.Fatal(err)
	}
	if d.Verdict != OverQuota || d.Used != 8 || d.Limit != 2 {
		t.Fatalf("lowered to 2: %+v", d)
	}
}

func TestSuspensionBetweenTwoRecipients(t *testing.T) {
	e, _ := newEngine(t, map[string]Account{"alice": {DailyLimit: 10}})
	now := at("2026-11-27 10:00:00")
	var txn Txn
	if d := reserve(t, e, &txn, "alice", now); !d.Allowed() {
		t.Fatalf("first rcpt: %v", d.Verdict)
	}
	setSettings(t, e, Settings{HoldTTL: time.Hour, Location: newYork, Accounts: table(map[string]Account{"alice": {DailyLimit: 10, Status: StatusSuspended}})})
	d, err := e.Reserve(ctx, &txn, "alice", now)
	if err != nil || d.Verdict != Suspended {
		t.Fatalf("second rcpt after suspension: %v, %v", d.Verdict, err)
	}
	if txn.Reserved() != 1 {
		t.Fatalf("refused reservation changed the transaction: %d", txn.Reserved())
	}
	e.Release(ctx, &txn)
}

func TestUnknownLoginGetsDefaultLimit(t *testing.T) {
	e, st := newEngine(t, nil)
	now := at("2026-11-27 10:00:00")
	d := check(t, e, "stranger", now)
	if d.Verdict != NotProvisioned {
		t.Fatalf("default 0: %v, want not_provisioned", d.Verdict)
	}
	setSettings(t, e, Settings{HoldTTL: time.Hour, Location: newYork, DefaultDailyLimit: 3})
	if got := send(t, e, "Stranger", 5, now); got != 3 {
		t.Fatalf("default 3: accepted %d", got)
	}
	st.putAccount(AccountRecord{Name: "stranger", DailyLimit: 4, Status: StatusActive})
	if got := send(t, e, "STRANGER", 5, now); got != 1 {
		t.Fatalf("store account with limit 4 after 3 used: accepted %d, want 1", got)
	}
	setSettings(t, e, Settings{HoldTTL: time.Hour, Location: newYork, Accounts: table(map[string]Account{"stranger": {DailyLimit: 1}})})
	if d := check(t, e, "stranger", now); d.Verdict != OverQuota || d.Account.Source != FromFile {
		t.Fatalf("file account must win: %+v", d)
	}
}

func TestReleaseAndAbort(t *testing.T) {
	e, st := newEngine(t, map[string]Account{"alice": {DailyLimit: 3}})
	now := at("2026-11-27 10:00:00")
	var txn Txn
	for range 3 {
		reserve(t, e, &txn, "alice", now)
	}
	if d := check(t, e, "alice", now); d.Verdict != OverQuota || d.Reserved != 3 {
		t.Fatalf("held reservations must count: %+v", d)
	}
	e.Release(ctx, &txn)
	if d := check(t, e, "alice", now); !d.Allowed() || d.Reserved != 0 || d.Used != 0 {
		t.Fatalf("after release: %+v", d)
	}
	if st.usage["alice|2026-11-27"] != 0 {
		t.Fatal("release counted relays")
	}
	if !e.counter.(*Local).idle() {
		t.Fatal("idle account state kept")
	}
}

func TestStoreFailureCountsNothing(t *testing.T) {
	e, st := newEngine(t, map[string]Account{"alice": {DailyLimit: 3}})
	now := at("2026-11-27 10:00:00")
	var txn Txn
	reserve(t, e, &txn, "alice", now)
	st.fail = errors.New("disk full")
	if _, err := e.Commit(ctx, &txn, now); !errors.Is(err, ErrStore) {
		t.Fatalf("commit on a failing store: %v, want ErrStore", err)
	}
	if _, err := e.Check(ctx, "alice", now); !errors.Is(err, ErrStore) {
		t.Fatalf("check on a failing store: %v", err)
	}
	st.fail = nil
	if d := check(t, e, "alice", now); d.Used != 0 || d.Reserved != 0 {
		t.Fatalf("failed commit left something behind: %+v", d)
	}
}

// TestUnwritableStoreRefusesBeforeTheMessage: a store that says it cannot
// write (a disk low on space) makes Check and Reserve fail with ErrStore, so
// the client is turned away at RCPT instead of after sending its message.
// Verdicts that need no write stay exact.
func TestUnwritableStoreRefusesBeforeTheMessage(t *testing.T) {
	e, st := newEngine(t, map[string]Account{
		"alice": {DailyLimit: 3}, "bob": {DailyLimit: 3, Status: StatusSuspended}, "carol": {DailyLimit: 1},
	})
	now := at("2026-11-27 10:00:00")
	if send(t, e, "carol", 1, now) != 1 {
		t.Fatal("carol could not send")
	}
	st.mu.Lock()
	st.readOnly = errors.New("low on space")
	st.mu.Unlock()
	var txn Txn
	if _, err := e.Reserve(ctx, &txn, "alice", now); !errors.Is(err, ErrStore) {
		t.Errorf("reserve on an unwritable store: %v, want ErrStore", err)
	}
	if txn.Reserved() != 0 {
		t.Errorf("refused reservation held %d", txn.Reserved())
	}
	if _, err := e.Check(ctx, "alice", now); !errors.Is(err, ErrStore) {
		t.Errorf("check on an unwritable store: %v, want ErrStore", err)
	}
	if d, err := e.Check(ctx, "bob", now); err != nil || d.Verdict != Suspended {
		t.Errorf("suspended account: %v, %v; want Suspended", d.Verdict, err)
	}
	if d, err := e.Check(ctx, "carol", now); err != nil || d.Verdict != OverQuota {
		t.Errorf("exhausted account: %v, %v; want OverQuota", d.Verdict, err)
	}
	st.mu.Lock()
	st.readOnly = nil
	st.mu.Unlock()
	if send(t, e, "alice", 3, now) != 3 {
		t.Error("alice cannot send once the store is writable again")
	}
}

// reserveCommitConcurrently runs n goroutines that each reserve one relay
// for login and commit it when granted; it returns how many were granted.
func reserveCommitConcurrently(t *testing.T, e *Engine, login string, n int, now time.Time) int64 {
	t.Helper()
	var granted atomic.Int64
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			var txn Txn
			d, err := e.Reserve(ctx, &txn, login, now)
			if err != nil {
				t.Error(err)
				return
			}
			if d.Allowed() {
				granted.Add(1)
				if _, err := e.Commit(ctx, &txn, now); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	return granted.Load()
}

func TestConcurrentReservationsNeverExceedLimit(t *testing.T) {
	e, st := newEngine(t, map[string]Account{"alice": {DailyLimit: 100}})
	now := at("2026-11-27 10:00:00")
	accepted := reserveCommitConcurrently(t, e, "alice", 1000, now)
	if accepted != 100 || st.usage["alice|2026-11-27"] != 100 {
		t.Fatalf("accepted %d, committed %d; want exactly 100", accepted, st.usage["alice|2026-11-27"])
	}
}

// TestMessageOverMidnight: a relay at 23:59:59 counts for that day, one at
// 00:00:00 for the next, also inside one message; the policy service
// (Check) and the milter (Reserve) agree at every instant.
func TestMessageOverMidnight(t *testing.T) {
	e, st := newEngine(t, map[string]Account{"alice": {DailyLimit: 1}})
	var txn Txn
	if d := reserve(t, e, &txn, "alice", at("2026-11-27 23:59:59")); !d.Allowed() {
		t.Fatalf("23:59:59: %v", d.Verdict)
	}
	if d := reserve(t, e, &txn, "alice", at("2026-11-27 23:59:59")); d.Verdict != OverQuota || d.Resets() != "2026-11-28 00:00 EST" {
		t.Fatalf("second relay at 23:59:59: %v resetting %s", d.Verdict, d.Resets())
	}
	midnight := at("2026-11-28 00:00:00")
	if d := check(t, e, "alice", midnight); !d.Allowed() {
		t.Fatalf("policy at 00:00:00: %v", d.Verdict)
	}
	if d := reserve(t, e, &txn, "alice", midnight); !d.Allowed() || d.Day != "2026-11-28" {
		t.Fatalf("milter at 00:00:00: %v on %s, want allowed on the new day", d.Verdict, d.Day)
	}
	d, err := e.Commit(ctx, &txn, at("2026-11-28 00:00:02"))
	if err != nil {
		t.Fatal(err)
	}
	if st.usage["alice|2026-11-27"] != 1 || st.usage["alice|2026-11-28"] != 1 || d.Day != "2026-11-28" || d.Used != 1 {
		t.Fatalf("each relay must count on its own day: %v, %+v", st.usage, d)
	}
	if d.Resets() != "2026-11-29 00:00 EST" {
		t.Fatalf("reset after commit: %s", d.Resets())
	}
}

func TestStoreAccountLimitIncludesTheDaysTopUps(t *testing.T) {
	e, st := newEngine(t, nil)
	st.putAccount(AccountRecord{Name: "carol", DailyLimit: 2, Status: StatusActive,
		TopUps: []DayCount{{Day: "2026-11-27", N: 3}}})
	if got := send(t, e, "carol", 9, at("2026-11-27 10:00:00")); got != 5 {
		t.Fatalf("limit 2 + top-up 3: accepted %d, want 5", got)
	}
	d, err := e.Check(ctx, "carol", at("2026-11-28 00:00:00"))
	if err != nil || !d.Allowed() || d.Limit != 2 {
		t.Fatalf("the next day: %+v, %v; want allowed with limit 2 (the top-up gone)", d, err)
	}
}

func TestCommitRefusesAnAccountSuspendedSinceItsReservation(t *testing.T) {
	e, st := newEngine(t, nil)
	now := at("2026-11-27 10:00:00")
	st.putAccount(AccountRecord{Name: "dave", DailyLimit: 10, Status: StatusActive})
	var txn Txn
	for range 2 {
		if d, err := e.Reserve(ctx, &txn, "dave", now); err != nil || !d.Allowed() {
			t.Fatalf("reserve: %v, %v", d.Verdict, err)
		}
	}
	st.putAccount(AccountRecord{Name: "dave", DailyLimit: 10, Status: StatusSuspended})
	d, err := e.Commit(ctx, &txn, now)
	if err != nil || d.Verdict != Suspended {
		t.Fatalf("commit after suspension: %v, %v; want suspended", d.Verdict, err)
	}
	if st.usage["dave|2026-11-27"] != 0 || txn.Reserved() != 0 || !e.counter.(*Local).idle() {
		t.Fatalf("a refused commit counted %d, left %d reserved", st.usage["dave|2026-11-27"], txn.Reserved())
	}
}

// TestOneSettingsSnapshotPerCall: a reload that lands while a call looks a
// store account up does not change the zone that call decides in.
func TestOneSettingsSnapshotPerCall(t *testing.T) {
	e, st := newEngine(t, nil)
	st.putAccount(AccountRecord{Name: "bob", DailyLimit: 4, Status: StatusActive})
	// 22:00 in New York is already the next day in Tokyo.
	now := at("2026-11-27 22:00:00")
	newYorkSettings, tokyo := Settings{HoldTTL: time.Hour, Location: newYork}, Settings{HoldTTL: time.Hour, Location: mustZone("Asia/Tokyo")}
	reload := func() { setSettings(t, e, tokyo) }
	want := func(call string, d Decision) {
		t.Helper()
		if d.Day != "2026-11-27" || d.Resets() != "2026-11-28 00:00 EST" {
			t.Errorf("%s: day %s resetting %s, want New York's, the zone the call started with", call, d.Day, d.Resets())
		}
		setSettings(t, e, newYorkSettings)
	}

	st.onAccount = reload
	want("check", check(t, e, "bob", now))
	usage, err := e.Usage(ctx, "bob", now)
	if err != nil {
		t.Fatal(err)
	}
	want("usage", usage)
	var txn Txn
	want("reserve", reserve(t, e, &txn, "bob", now))
	d, err := e.Commit(ctx, &txn, now)
	if err != nil {
		t.Fatal(err)
	}
	want("commit", d)
}

// TestUnknownFileStatusIsRefused: a file account whose status is neither
// given nor known must not relay as if it were active (the table keeps it
// as terminated); a missing status is active, the one default ParseStatus
// defines.
func TestUnknownFileStatusIsRefused(t *testing.T) {
	e, _ := newEngine(t, map[string]Account{"alice": {DailyLimit: 5, Status: "closed"}})
	if d := check(t, e, "alice", at("2026-11-27 10:00:00")); d.Allowed() {
		t.Fatalf("status closed: %v, want refused", d.Verdict)
	}
	setSettings(t, e, Settings{HoldTTL: time.Hour, Location: newYork, Accounts: table(map[string]Account{"alice": {DailyLimit: 5}})})
	if d := check(t, e, "alice", at("2026-11-27 10:00:00")); !d.Allowed() || d.Account.Status != StatusActive {
		t.Fatalf("status not given: %v with status %q, want allowed and active", d.Verdict, d.Account.Status)
	}
}
func TestHoldOutlivedByItsMessage(t *testing.T) {
	e, st := newEngine(t, map[string]Account{"alice": {DailyLimit: 2}})
	rcpt := at("2026-11-27 10:00:00")
	eom := rcpt.Add(2 * time.Hour) // HoldTTL is 1h
	var slow Txn
	if d, err := e.Reserve(ctx, &slow, "alice", rcpt); err != nil || !d.Allowed() {
		t.Fatalf("reserve: %v %v", d.Verdict, err)
	}
	if d, err := e.Commit(ctx, &slow, eom); err != nil || d.Used != 1 {
		t.Fatalf("room left: %+v %v, want counted", d, err)
	}
	if d, err := e.Reserve(ctx, &slow, "alice", rcpt); err != nil || !d.Allowed() {
		t.Fatalf("reserve: %v %v", d.Verdict, err)
	}
	if got := send(t, e, "alice", 1, eom); got != 1 {
		t.Fatalf("the expired hold still blocks: accepted %d", got)
	}
	_, err := e.Commit(ctx, &slow, eom)
	if !errors.Is(err, ErrStore) || !errors.Is(err, ErrHoldLost) {
		t.Fatalf("no room left: %v, want ErrStore wrapping ErrHoldLost", err)
	}
	if st.usage["alice|2026-11-27"] != 2 || slow.Reserved() != 0 {
		t.Fatalf("usage %d, txn holds %d; want 2 and an emptied txn", st.usage["alice|2026-11-27"], slow.Reserved())
	}
}

var ctx = context.Background()
