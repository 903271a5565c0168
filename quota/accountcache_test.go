package quota_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/relaycap/relaycap/quota"
	"github.com/relaycap/relaycap/quota/badgerstore"
)

var ny, _ = time.LoadLocation("America/New_York")

// cachedEngine is an engine over a real Badger store whose accounts are
// read through an AccountCache, as the daemon wires it.
func cachedEngine(t *testing.T, defaultLimit int64) (*quota.Engine, *quota.AccountCache) {
	t.Helper()
	st, err := badgerstore.Open(t.TempDir(), badgerstore.Options{HistoryDays: 10})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cache := quota.NewAccountCache(st, 100)
	e, err := quota.NewEngine(quota.NewLocal(st, time.Minute), cache, quota.Settings{Location: ny, DefaultDailyLimit: defaultLimit, HoldTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return e, cache
}

func change(t *testing.T, a quota.Accounts, name string, c quota.Change) {
	t.Helper()
	if _, err := a.UpdateAccount(context.Background(), name, c.Apply(name)); err != nil {
		t.Fatal(err)
	}
}

func wantVerdict(t *testing.T, e *quota.Engine, login string, now time.Time, want quota.Verdict) {
	t.Helper()
	d, err := e.Check(context.Background(), login, now)
	if err != nil {
		t.Fatal(err)
	}
	if d.Verdict != want {
		t.Fatalf("%s: %v (%d/%d used), want %v", login, d.Verdict, d.Used, d.Limit, want)
	}
}

// TestAccountCacheMissesNoAdminChange: every change made through the
// cache applies to the very next check, though the checks before it were
// answered from memory: a creation over a cached default login, a
// suspension, a resumption, a purchase, a deletion.
func TestAccountCacheMissesNoAdminChange(t *testing.T) {
	e, cache := cachedEngine(t, 0)
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, ny)
	day := quota.DayOf(now, ny)
	ctx := context.Background()
	const login = "alice@example.com"
	one := int64(1)

	wantVerdict(t, e, login, now, quota.NotProvisioned) // cached as not found
	change(t, cache, login, quota.Change{DailyLimit: &one, Time: now, Day: day})
	wantVerdict(t, e, login, now, quota.Allowed)
	wantVerdict(t, e, login, now, quota.Allowed) // from memory

	change(t, cache, login, quota.Change{Status: quota.StatusSuspended, Time: now, Day: day})
	wantVerdict(t, e, login, now, quota.Suspended)
	change(t, cache, login, quota.Change{Status: quota.StatusActive, Time: now, Day: day})
	wantVerdict(t, e, login, now, quota.Allowed)

	var txn quota.Txn
	if d, err := e.Reserve(context.Background(), &txn, login, now); err != nil || !d.Allowed() {
		t.Fatalf("reserve: %v, %v", d.Verdict, err)
	}
	if _, err := e.Commit(context.Background(), &txn, now); err != nil {
		t.Fatal(err)
	}
	wantVerdict(t, e, login, now, quota.OverQuota) // 1/1 used
	p := quota.Purchase{ID: "p-1", Account: login, Relays: 1, TodayOnly: true, Day: day, Time: now}
	if _, _, err := cache.Purchase(ctx, p); err != nil {
		t.Fatal(err)
	}
	wantVerdict(t, e, login, now, quota.Allowed) // 1/2

	if err := cache.DeleteAccount(ctx, login, quota.Deletion("test", "", now, day)); err != nil {
		t.Fatal(err)
	}
	wantVerdict(t, e, login, now, quota.NotProvisioned)
}

// TestAccountCacheRacingLookups suspends and resumes an account while
// lookups run all the time: once a change has returned, no lookup that
// starts after it sees the state from before it.
func TestAccountCacheRacingLookups(t *testing.T) {
	_, cache := cachedEngine(t, 0)
	ctx := context.Background()
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, ny)
	day := quota.DayOf(now, ny)
	const name = "bob@example.com"
	limit := int64(10)
	change(t, cache, name, quota.Change{DailyLimit: &limit, Time: now, Day: day})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				cache.Account(ctx, name)
			}
		})
	}
	defer func() { close(stop); wg.Wait() }()
	status := []quota.Status{quota.StatusSuspended, quota.StatusActive}
	for i := range 60 {
		want := status[i%2]
		change(t, cache, name, quota.Change{Status: want, Time: now, Day: day})
		r, ok, err := cache.Account(ctx, name)
		if err != nil || !ok || r.Status != want {
			t.Fatalf("change %d: %v %v %v, want status %s", i, r.Status, ok, err, want)
		}
	}
}

// TestAccountCacheBounded: the cache keeps at most its size, and every
// lookup is still right after evictions.
func TestAccountCacheBounded(t *testing.T) {
	e, cache := cachedEngine(t, 5)
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, ny)
	day := quota.DayOf(now, ny)
	for i := range 300 {
		name := fmt.Sprintf("u%03d@example.com", i)
		if i%2 == 0 {
			limit := int64(i + 1)
			change(t, cache, name, quota.Change{DailyLimit: &limit, Time: now, Day: day})
		}
	}
	for round := range 2 {
		for i := range 300 {
			name := fmt.Sprintf("u%03d@example.com", i)
			a, err := e.Lookup(context.Background(), name, day)
			want := int64(5)
			if i%2 == 0 {
				want = int64(i + 1)
			}
			if err != nil || a.DailyLimit != want {
				t.Fatalf("round %d, %s: %+v, %v; want limit %d", round, name, a, err, want)
			}
		}
	}
	if n := cache.Len(); n > 100 {
		t.Fatalf("%d entries cached, want at most 100", n)
	}
}
