package badgerstore

import (
	"context"
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/relaycap/relaycap/quota"
)

// freeBytes is what statfs reports as available in dir right now.
func freeBytes(t *testing.T, dir string) uint64 {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return st.Bavail * uint64(st.Bsize)
}

// The thresholds below sit 1 TiB above or below the filesystem's real free
// space, so the checks read the real statfs and cannot pass by accident.
const tib = 1 << 40

func TestOpenRefusesALowDisk(t *testing.T) {
	dir := t.TempDir()
	_, err := Open(dir, Options{HistoryDays: 1, MinFreeBytes: freeBytes(t, dir) + tib})
	if !errors.Is(err, ErrLowSpace) || !strings.Contains(err.Error(), "store.min_free_mb") {
		t.Fatalf("Open with the disk below min free: %v, want ErrLowSpace naming store.min_free_mb", err)
	}
}

// TestLowDiskRefusesWritesAndCountsNothing: below the threshold every
// write fails with ErrLowSpace before Badger is touched; once space is back
// (here: the threshold lowered) writes go on from the same totals.
func TestLowDiskRefusesWritesAndCountsNothing(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{HistoryDays: 1, MinFreeBytes: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	add := []quota.DayCount{{Day: "2026-11-27", N: 2}}
	if _, err := s.AddUsage("alice", add); err != nil {
		t.Fatal(err)
	}

	s.minFree = freeBytes(t, dir) + tib
	if err := s.Writable(s.now()); !errors.Is(err, ErrLowSpace) {
		t.Errorf("Writable: %v, want ErrLowSpace", err)
	}
	if _, err := s.AddUsage("alice", add); !errors.Is(err, ErrLowSpace) {
		t.Errorf("AddUsage: %v, want ErrLowSpace", err)
	}
	ctx := context.Background()
	limit := int64(5)
	if _, err := s.UpdateAccount(ctx, "bob", quota.Change{DailyLimit: &limit}.Apply("bob")); !errors.Is(err, ErrLowSpace) {
		t.Errorf("UpdateAccount: %v, want ErrLowSpace", err)
	}
	if _, _, err := s.Purchase(ctx, quota.Purchase{ID: "p1", Account: "bob", Relays: 1, Day: "2026-11-27"}); !errors.Is(err, ErrLowSpace) {
		t.Errorf("Purchase: %v, want ErrLowSpace", err)
	}
	if err := s.DeleteAccount(ctx, "bob", quota.Deletion("test", "", time.Time{}, "")); !errors.Is(err, ErrLowSpace) {
		t.Errorf("DeleteAccount: %v, want ErrLowSpace", err)
	}
	if n, err := s.Usage("alice", "2026-11-27", s.now()); err != nil || n != 2 {
		t.Errorf("usage read while low on space: %d, %v; want 2", n, err)
	}

	s.minFree = freeBytes(t, dir) - min(freeBytes(t, dir), tib)
	if err := s.Writable(s.now()); err != nil {
		t.Errorf("Writable with space back: %v", err)
	}
	if n, err := s.AddUsage("alice", add); err != nil || n[0] != 4 {
		t.Errorf("AddUsage with space back: %v, %v; want [4]", n, err)
	}
}

// TestFreeSpaceIsReadOncePerSecond: Writable runs for every allowed
// recipient and AddUsage for every commit; one statfs answer above the
// threshold serves them all for spaceTTL. A low answer is never reused, so
// writes resume as soon as space is back.
func TestFreeSpaceIsReadOncePerSecond(t *testing.T) {
	s, err := Open(t.TempDir(), Options{HistoryDays: 1, MinFreeBytes: 100})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	free, calls := uint64(1000), 0
	s.now = func() time.Time { return now }
	s.statfs = func(string) (uint64, error) { calls++; return free, nil }
	writable := func(when string, wantLow bool, wantCalls int) {
		t.Helper()
		if err := s.Writable(s.now()); errors.Is(err, ErrLowSpace) != wantLow || (err != nil && !wantLow) || calls != wantCalls {
			t.Fatalf("%s: %v after %d statfs calls, want low=%v after %d", when, err, calls, wantLow, wantCalls)
		}
	}

	writable("first call", false, 1)
	writable("again", false, 1)
	if _, err := s.AddUsage("alice", []quota.DayCount{{Day: "2026-11-27", N: 1}}); err != nil || calls != 1 {
		t.Fatalf("commit within the second: %v after %d statfs calls, want the cached answer", err, calls)
	}
	free = 10 // the disk filled up
	now = now.Add(spaceTTL - time.Nanosecond)
	writable("just before the reading expires", false, 1)
	now = now.Add(time.Nanosecond)
	writable("once it expired", true, 2)
	writable("while low", true, 3)
	free = 1000 // space is back
	writable("space back", false, 4)
	writable("space back, cached", false, 4)
	now = now.Add(-time.Minute) // the clock stepped back: read again
	writable("after the clock stepped back", false, 5)
}
