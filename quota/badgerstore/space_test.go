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
	if err := s.Writable(); !errors.Is(err, ErrLowSpace) {
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
	if n, err := s.Usage("alice", "2026-11-27"); err != nil || n != 2 {
		t.Errorf("usage read while low on space: %d, %v; want 2", n, err)
	}

	s.minFree = freeBytes(t, dir) - min(freeBytes(t, dir), tib)
	if err := s.Writable(); err != nil {
		t.Errorf("Writable with space back: %v", err)
	}
	if n, err := s.AddUsage("alice", add); err != nil || n[0] != 4 {
		t.Errorf("AddUsage with space back: %v, %v; want [4]", n, err)
	}
}
