package storetest

// The counter contract: exact limits under concurrency, holds that expire,
// commits that count once and all or nothing, and usage that expires after
// its history. It reads the real clock and sleeps past expiries, because a
// shared store judges expiry by its own clock, not by the now it is passed.

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relaycap/relaycap/quota"
)

// CounterOptions shape the counter a test needs.
type CounterOptions struct {
	// KeepUsage is how long a day's usage is kept after its last write;
	// zero means the store's normal history.
	KeepUsage time.Duration
}

// OpenCounter returns a fresh counter, with no usage or holds, closed at
// the end of t.
type OpenCounter func(t *testing.T, o CounterOptions) quota.Counter

// TestCounter runs the quota.Counter contract against counters from open.
func TestCounter(t *testing.T, open OpenCounter) {
	tests := []struct {
		name string
		run  func(*testing.T, OpenCounter)
	}{
		{"ReserveWithinLimit", testReserveWithinLimit},
		{"ReleaseFreesCapacity", testRelease},
		{"CommitCountsOnce", testCommitCountsOnce},
		{"ReserveRetryHoldsOnce", testReserveRetry},
		{"ExactUnder1000Goroutines", testExact},
		{"ExpiredHoldCountsAsReleased", testExpiry},
		{"ExpiredHoldReservedAgainAtCommit", testExpiredCommit},
		{"MultiDayCommitAllOrNone", testMultiDay},
		{"UsageExpiresAfterHistory", testHistoryExpiry},
		{"InvalidHoldsGrantNothing", testInvalid},
		{"HourWindowApartFromItsDay", testHourWindow},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, open)
		})
	}
}

const day = quota.Day("2026-11-27")

// seq makes hold and transaction ids unique within one test binary.
var seq atomic.Int64

func id(prefix string) string { return fmt.Sprintf("%s-%d", prefix, seq.Add(1)) }

func hold(account string, d quota.Day, n int64, ttl time.Duration) quota.Hold {
	return quota.Hold{ID: id("h"), Account: account, Day: d, N: n, Expires: time.Now().Add(ttl)}
}

func reserve(t *testing.T, c quota.Counter, h quota.Hold, limit int64) (quota.Count, bool) {
	t.Helper()
	got, ok, err := c.Reserve(ctx, h, limit, time.Now())
	if err != nil {
		t.Fatalf("reserve %+v: %v", h, err)
	}
	return got, ok
}

func peek(t *testing.T, c quota.Counter, account string, d quota.Day) quota.Count {
	t.Helper()
	got, err := c.Peek(ctx, account, d, time.Now())
	if err != nil {
		t.Fatalf("peek %s %s: %v", account, d, err)
	}
	return got
}

func commit(t *testing.T, c quota.Counter, txn string, holds []quota.Hold, limit int64) []quota.DayCount {
	t.Helper()
	totals, err := c.Commit(ctx, txn, holds, limit, time.Now())
	if err != nil {
		t.Fatalf("commit %s: %v", txn, err)
	}
	return totals
}

func testReserveWithinLimit(t *testing.T, open OpenCounter) {
	c := open(t, CounterOptions{})
	a := id("alice")
	var holds []quota.Hold
	for i := range 3 {
		h := hold(a, day, 2, time.Hour)
		got, ok := reserve(t, c, h, 7)
		if !ok || got.Reserved != int64(2*(i+1)) || got.Used != 0 {
			t.Fatalf("hold %d of 2 under limit 7: %+v granted=%v", i, got, ok)
		}
		holds = append(holds, h)
	}
	if got, ok := reserve(t, c, hold(a, day, 2, time.Hour), 7); ok || got.Reserved != 6 {
		t.Fatalf("2 more over 6 held, limit 7: %+v granted=%v, want refused", got, ok)
	}
	if _, ok := reserve(t, c, hold(a, day, 1, time.Hour), 7); !ok {
		t.Fatal("the 7th relay was refused")
	}
	if got := peek(t, c, a, day); got.Reserved != 7 || got.Used != 0 {
		t.Fatalf("peek: %+v, want 7 reserved", got)
	}
	if got := peek(t, c, a, "2026-11-28"); got != (quota.Count{}) {
		t.Fatalf("another day: %+v, want nothing", got)
	}
	if got := peek(t, c, a+"x", day); got != (quota.Count{}) {
		t.Fatalf("an account whose name extends alice's: %+v, want nothing", got)
	}
	totals := commit(t, c, id("t"), holds, 7)
	if len(totals) != 1 || totals[0] != (quota.DayCount{Day: day, N: 6}) {
		t.Fatalf("commit totals %v, want [%s 6]", totals, day)
	}
	if got := peek(t, c, a, day); got.Used != 6 || got.Reserved != 1 {
		t.Fatalf("after commit: %+v, want 6 used, 1 reserved", got)
	}
	if got, ok := reserve(t, c, hold(a, day, 1, time.Hour), 7); ok || got.Used != 6 || got.Reserved != 1 {
		t.Fatalf("used 6 + held 1, limit 7: %+v granted=%v, want refused", got, ok)
	}
	if _, ok := reserve(t, c, hold(a, day, 1, time.Hour), 0); ok {
		t.Fatal("limit 0 granted a hold")
	}
}

func testRelease(t *testing.T, open OpenCounter) {
	c := open(t, CounterOptions{})
	a := id("alice")
	h1, h2 := hold(a, day, 1, time.Hour), hold(a, day, 1, time.Hour)
	reserve(t, c, h1, 2)
	reserve(t, c, h2, 2)
	if _, ok := reserve(t, c, hold(a, day, 1, time.Hour), 2); ok {
		t.Fatal("a third hold under limit 2")
	}
	if err := c.Release(ctx, []quota.Hold{h1, h2, hold(a, day, 1, time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if got := peek(t, c, a, day); got != (quota.Count{}) {
		t.Fatalf("after release: %+v, want nothing", got)
	}
	if err := c.Release(ctx, []quota.Hold{h1}); err != nil {
		t.Fatalf("second release: %v", err)
	}
	if _, ok := reserve(t, c, hold(a, day, 2, time.Hour), 2); !ok {
		t.Fatal("released capacity is not back")
	}
}

func testCommitCountsOnce(t *testing.T, open OpenCounter) {
	c := open(t, CounterOptions{})
	a := id("alice")
	h1, h2 := hold(a, day, 1, time.Hour), hold(a, day, 2, time.Hour)
	reserve(t, c, h1, 10)
	reserve(t, c, h2, 10)
	txn := id("t")
	first := commit(t, c, txn, []quota.Hold{h1, h2}, 10)
	again := commit(t, c, txn, []quota.Hold{h1, h2}, 10)
	if len(first) != 1 || first[0].N != 3 || len(again) != 1 || again[0] != first[0] {
		t.Fatalf("commit %v, retried %v; want [%s 3] both times", first, again, day)
	}
	if got := peek(t, c, a, day); got.Used != 3 || got.Reserved != 0 {
		t.Fatalf("after a retried commit: %+v, want 3 used", got)
	}
}

func testReserveRetry(t *testing.T, open OpenCounter) {
	c := open(t, CounterOptions{})
	a := id("alice")
	h := hold(a, day, 1, time.Hour)
	reserve(t, c, h, 2)
	if got, ok := reserve(t, c, h, 2); !ok || got.Reserved != 1 {
		t.Fatalf("the same hold again: %+v granted=%v, want granted and held once", got, ok)
	}
	if _, ok := reserve(t, c, hold(a, day, 1, time.Hour), 2); !ok {
		t.Fatal("a retried hold took two relays")
	}
}

func testExact(t *testing.T, open OpenCounter) {
	c := open(t, CounterOptions{})
	a := id("alice")
	const limit, workers = 100, 1000
	var granted, committed atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Go(func() {
			h := hold(a, day, 1, time.Hour)
			_, ok, err := c.Reserve(ctx, h, limit, time.Now())
			if err != nil {
				errs <- err
				return
			}
			if !ok {
				return
			}
			granted.Add(1)
			if _, err := c.Commit(ctx, id("t"), []quota.Hold{h}, limit, time.Now()); err != nil {
				errs <- err
				return
			}
			committed.Add(1)
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	got := peek(t, c, a, day)
	if granted.Load() != limit || committed.Load() != limit || got.Used != limit || got.Reserved != 0 {
		t.Fatalf("%d goroutines, limit %d: granted %d, committed %d, count %+v; want exactly %d",
			workers, limit, granted.Load(), committed.Load(), got, limit)
	}
}

// ttl is the life of the holds that are meant to expire during a test.
const ttl = 300 * time.Millisecond

func testExpiry(t *testing.T, open OpenCounter) {
	c := open(t, CounterOptions{})
	a := id("alice")
	reserve(t, c, hold(a, day, 2, ttl), 2)
	if _, ok := reserve(t, c, hold(a, day, 1, time.Hour), 2); ok {
		t.Fatal("a hold over a live one under limit 2")
	}
	time.Sleep(2 * ttl)
	if got := peek(t, c, a, day); got != (quota.Count{}) {
		t.Fatalf("after the hold expired: %+v, want nothing", got)
	}
	if _, ok := reserve(t, c, hold(a, day, 2, time.Hour), 2); !ok {
		t.Fatal("an expired hold still counts")
	}
}

func testExpiredCommit(t *testing.T, open OpenCounter) {
	c := open(t, CounterOptions{})
	a := id("alice")
	// Room left: the expired hold is reserved again and counted.
	h := hold(a, day, 2, ttl)
	reserve(t, c, h, 3)
	time.Sleep(2 * ttl)
	if totals := commit(t, c, id("t"), []quota.Hold{h}, 3); totals[0].N != 2 {
		t.Fatalf("expired hold with room: totals %v, want 2", totals)
	}
	// No room left: someone else took the capacity meanwhile.
	h = hold(a, day, 1, ttl)
	reserve(t, c, h, 3)
	time.Sleep(2 * ttl)
	other := hold(a, day, 1, time.Hour)
	if _, ok := reserve(t, c, other, 3); !ok {
		t.Fatal("capacity of an expired hold is not free")
	}
	_, err := c.Commit(ctx, id("t"), []quota.Hold{h}, 3, time.Now())
	if !errors.Is(err, quota.ErrHoldLost) {
		t.Fatalf("expired hold without room: %v, want ErrHoldLost", err)
	}
	if got := peek(t, c, a, day); got.Used != 2 || got.Reserved != 1 {
		t.Fatalf("after the refused commit: %+v, want 2 used, 1 reserved", got)
	}
}

func testMultiDay(t *testing.T, open OpenCounter) {
	c := open(t, CounterOptions{})
	a := id("alice")
	d1, d2 := quota.Day("2026-11-27"), quota.Day("2026-11-28")
	h1, h2, h3 := hold(a, d1, 1, time.Hour), hold(a, d2, 1, time.Hour), hold(a, d1, 1, time.Hour)
	for _, h := range []quota.Hold{h1, h2, h3} {
		reserve(t, c, h, 2)
	}
	totals := commit(t, c, id("t"), []quota.Hold{h1, h2, h3}, 2)
	want := []quota.DayCount{{Day: d1, N: 2}, {Day: d2, N: 1}}
	if len(totals) != 2 || totals[0] != want[0] || totals[1] != want[1] {
		t.Fatalf("totals %v, want %v", totals, want)
	}
	// One day's expired hold has no room left: the other day counts nothing.
	late := hold(a, d1, 1, ttl)
	ok := hold(a, d2, 1, time.Hour)
	if _, granted := reserve(t, c, ok, 2); !granted {
		t.Fatal("day two has room for one")
	}
	if _, granted := reserve(t, c, late, 3); !granted {
		t.Fatal("day one has room under limit 3")
	}
	time.Sleep(2 * ttl)
	if _, err := c.Commit(ctx, id("t"), []quota.Hold{ok, late}, 2, time.Now()); !errors.Is(err, quota.ErrHoldLost) {
		t.Fatalf("commit with a lost hold: %v, want ErrHoldLost", err)
	}
	if got := peek(t, c, a, d2); got.Used != 1 || got.Reserved != 1 {
		t.Fatalf("day two after the refused commit: %+v, want 1 used and the hold still there", got)
	}
	if got := peek(t, c, a, d1); got.Used != 2 || got.Reserved != 0 {
		t.Fatalf("day one after the refused commit: %+v, want 2 used", got)
	}
}

func testHistoryExpiry(t *testing.T, open OpenCounter) {
	const keep = 2 * time.Second
	c := open(t, CounterOptions{KeepUsage: keep})
	a := id("alice")
	h := hold(a, day, 1, time.Hour)
	reserve(t, c, h, 5)
	commit(t, c, id("t"), []quota.Hold{h}, 5)
	if got := peek(t, c, a, day); got.Used != 1 {
		t.Fatalf("just committed: %+v", got)
	}
	// Badger's expiry has whole seconds.
	time.Sleep(keep + 1500*time.Millisecond)
	if got := peek(t, c, a, day); got.Used != 0 {
		t.Fatalf("after its history: %+v, want the usage gone", got)
	}
}

func testInvalid(t *testing.T, open OpenCounter) {
	c := open(t, CounterOptions{})
	a := id("alice")
	now := time.Now()
	bad := []quota.Hold{
		{},
		{ID: id("h"), Account: a, Day: day, N: 0, Expires: now.Add(time.Hour)},
		{ID: id("h"), Account: a, Day: day, N: -1, Expires: now.Add(time.Hour)},
		{ID: id("h"), Account: a, Day: day, N: 1},
		{ID: "", Account: a, Day: day, N: 1, Expires: now.Add(time.Hour)},
	}
	for _, h := range bad {
		if _, ok, err := c.Reserve(ctx, h, 10, now); ok || err == nil {
			t.Errorf("reserve %+v: granted=%v err=%v, want an error", h, ok, err)
		}
	}
	if got := peek(t, c, a, day); got != (quota.Count{}) {
		t.Fatalf("invalid holds left %+v", got)
	}
	if _, err := c.Commit(ctx, id("t"), nil, 10, now); err == nil {
		t.Error("commit of no holds: no error")
	}
}

// testHourWindow: the burst brake counts a clock hour as a window of its
// own (quota.HourOf) beside the day: exact against its own limit, and
// invisible in the day's count.
func testHourWindow(t *testing.T, open OpenCounter) {
	c := open(t, CounterOptions{})
	a := id("alice")
	hour := quota.HourOf(time.Date(2026, 11, 27, 20, 0, 0, 0, time.UTC), time.UTC)
	var holds []quota.Hold
	for i := range 4 {
		h := hold(a, hour, 1, time.Hour)
		if _, ok := reserve(t, c, h, 3); ok != (i < 3) {
			t.Fatalf("hour hold %d granted=%v with a limit of 3", i+1, ok)
		}
		if i < 3 {
			holds = append(holds, h)
		}
	}
	totals := commit(t, c, id("t"), holds, 3)
	if len(totals) != 1 || totals[0].Day != hour || totals[0].N != 3 {
		t.Fatalf("hour commit totals %+v", totals)
	}
	if got := peek(t, c, a, day); got.Used != 0 || got.Reserved != 0 {
		t.Fatalf("the day sees the hour: %+v", got)
	}
	if got := peek(t, c, a, hour); got.Used != 3 {
		t.Fatalf("hour after its commit: %+v", got)
	}
}
