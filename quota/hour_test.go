package quota

import (
	"testing"
	"time"
)

func hourlyEngine(t *testing.T, hourly int64) *Engine {
	t.Helper()
	e, _ := newEngine(t, map[string]Account{"alice": {DailyLimit: 100, HourlyLimit: hourly}})
	return e
}

// TestHourlyBrakeAtTheHourEdge: 3 an hour; the fourth recipient of the
// hour is refused until the clock hour ends, the next hour has 3 again,
// and the day counts them all.
func TestHourlyBrakeAtTheHourEdge(t *testing.T) {
	e := hourlyEngine(t, 3)
	last := at("2026-11-27 14:59:59")
	var txn Txn
	for i := range 3 {
		if d := reserve(t, e, &txn, "alice", last); !d.Allowed() {
			t.Fatalf("relay %d of the hour refused: %v", i+1, d.Verdict)
		}
	}
	d := reserve(t, e, &txn, "alice", last)
	if d.Verdict != OverHourly || d.Hour.Limit != 3 || d.Hour.Used+d.Hour.Reserved != 3 ||
		!d.Hour.ResetAt.Equal(at("2026-11-27 15:00:00")) || d.Hour.TryAfter() != "15:00 EST" {
		t.Fatalf("fourth relay of the hour: %+v", d)
	}
	if c := check(t, e, "alice", last); c.Verdict != OverHourly || c.Reserved != 3 {
		t.Fatalf("check at the limit: %v, %d held (the refused hour must not keep its day hold)", c.Verdict, c.Reserved)
	}
	if _, err := e.Commit(ctx, &txn, last); err != nil {
		t.Fatal(err)
	}
	next := at("2026-11-27 15:00:00")
	if c := check(t, e, "alice", next); !c.Allowed() || c.Hour.Used != 0 {
		t.Fatalf("check in the next hour: %+v", c)
	}
	if n := send(t, e, "alice", 5, next); n != 3 {
		t.Fatalf("next hour sent %d of 5, want 3", n)
	}
	if c := check(t, e, "alice", next); c.Used != 6 || c.Verdict != OverHourly {
		t.Fatalf("day after two hours: used %d, %v", c.Used, c.Verdict)
	}
}

// TestHourlyBrakeOnDSTDays: on the fall-back day the two 1 o'clock hours
// are two windows, and the brake of the first lifts at 01:00 EST; on the
// spring-forward day the brake of 01:xx EST lifts at 03:00 EDT.
func TestHourlyBrakeOnDSTDays(t *testing.T) {
	e := hourlyEngine(t, 2)
	firstOne := time.Date(2026, 11, 1, 5, 30, 0, 0, time.UTC) // 01:30 EDT
	if n := send(t, e, "alice", 3, firstOne); n != 2 {
		t.Fatalf("01:30 EDT sent %d of 3", n)
	}
	d := check(t, e, "alice", firstOne)
	if d.Verdict != OverHourly || d.Hour.TryAfter() != "01:00 EST" || !d.Hour.ResetAt.Equal(time.Date(2026, 11, 1, 6, 0, 0, 0, time.UTC)) {
		t.Fatalf("at 01:30 EDT: %v, try after %s (%v)", d.Verdict, d.Hour.TryAfter(), d.Hour.ResetAt)
	}
	secondOne := firstOne.Add(time.Hour) // 01:30 EST, the same wall clock
	if n := send(t, e, "alice", 3, secondOne); n != 2 {
		t.Fatalf("01:30 EST (the repeated hour) sent %d of 3, want a fresh 2", n)
	}

	spring := time.Date(2026, 3, 8, 6, 59, 0, 0, time.UTC) // 01:59 EST, the hour before the gap
	if n := send(t, e, "alice", 3, spring); n != 2 {
		t.Fatalf("01:59 EST sent %d of 3", n)
	}
	d = check(t, e, "alice", spring)
	if d.Verdict != OverHourly || d.Hour.TryAfter() != "03:00 EDT" || !d.Hour.ResetAt.Equal(time.Date(2026, 3, 8, 7, 0, 0, 0, time.UTC)) {
		t.Fatalf("at 01:59 EST: %v, try after %s", d.Verdict, d.Hour.TryAfter())
	}
	if n := send(t, e, "alice", 3, time.Date(2026, 3, 8, 7, 0, 0, 0, time.UTC)); n != 2 {
		t.Fatalf("03:00 EDT sent %d of 3, want 2", n)
	}
}

func TestDefaultHourlyLimit(t *testing.T) {
	e, st := newEngine(t, map[string]Account{"own": {DailyLimit: 100, HourlyLimit: 5}})
	st.putAccount(AccountRecord{Name: "stored", DailyLimit: 100, Status: StatusActive})
	setSettings(t, e, Settings{Location: newYork, HoldTTL: time.Hour, DefaultDailyLimit: 100, DefaultHourlyLimit: 2,
		Accounts: table(map[string]Account{"own": {DailyLimit: 100, HourlyLimit: 5}})})
	now := at("2026-11-27 10:00:00")
	for login, want := range map[string]int{"own": 5, "stored": 2, "anyone": 2} {
		if n := send(t, e, login, 7, now); n != want {
			t.Errorf("%s sent %d of 7 in one hour, want %d", login, n, want)
		}
	}
	setSettings(t, e, Settings{Location: newYork, HoldTTL: time.Hour, DefaultDailyLimit: 100})
	if n := send(t, e, "stored", 3, now); n != 3 {
		t.Errorf("without a default hourly limit: %d of 3", n)
	}
}

func TestHourlyDryRun(t *testing.T) {
	e, _ := newEngine(t, map[string]Account{"alice": {DailyLimit: 100, HourlyLimit: 1, DryRun: true}})
	now := at("2026-11-27 10:00:00")
	var txn Txn
	would := []Verdict{reserve(t, e, &txn, "alice", now).WouldRefuse, reserve(t, e, &txn, "alice", now).WouldRefuse}
	if would[0] != NoVerdict || would[1] != OverHourly {
		t.Fatalf("dry run would refuse %v, want none then over_hourly_limit", would)
	}
	if _, err := e.Commit(ctx, &txn, now); err != nil {
		t.Fatal(err)
	}
	if c := check(t, e, "alice", now); !c.Allowed() || c.Hour.Used != 2 || c.WouldRefuse != OverHourly {
		t.Fatalf("after the commit: %+v", c)
	}
}

// TestConcurrentHourlyNeverExceeded: 40 sessions race for 5 relays of one
// hour; exactly 5 commit.
func TestConcurrentHourlyNeverExceeded(t *testing.T) {
	e := hourlyEngine(t, 5)
	now := at("2026-11-27 10:00:00")
	granted := reserveCommitConcurrently(t, e, "alice", 40, now)
	if c := check(t, e, "alice", now); granted != 5 || c.Hour.Used != 5 || c.Used != 5 {
		t.Fatalf("granted %d, hour used %d, day used %d; want 5 each", granted, c.Hour.Used, c.Used)
	}
}

func TestHourOf(t *testing.T) {
	if got := HourOf(time.Date(2026, 11, 1, 5, 30, 0, 0, time.UTC), newYork); got != "h2026-11-01T01-0400" || !got.IsHour() {
		t.Fatalf("HourOf = %q", got)
	}
	if DayOf(at("2026-11-27 10:00:00"), newYork).IsHour() {
		t.Fatal("a day taken for an hour")
	}
}
