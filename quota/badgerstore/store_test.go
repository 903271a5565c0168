package badgerstore

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	_ "time/tzdata"

	"github.com/dgraph-io/badger/v4"

	"github.com/relaycap/relaycap/quota"
)

func open(t testing.TB, dir string) *Store {
	t.Helper()
	s, err := Open(dir, Options{HistoryDays: 400})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestUsageSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	if n, err := s.AddUsage("alice", []quota.DayCount{{Day: "2026-11-27", N: 3}}); err != nil || n[0] != 3 {
		t.Fatalf("add: %v, %v", n, err)
	}
	n, err := s.AddUsage("alice", []quota.DayCount{{Day: "2026-11-27", N: 2}, {Day: "2026-11-28", N: 1}})
	if err != nil || len(n) != 2 || n[0] != 5 || n[1] != 1 {
		t.Fatalf("add over two days: totals %v, %v; want [5 1]", n, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir)
	defer s.Close()
	for day, want := range map[quota.Day]int64{"2026-11-27": 5, "2026-11-28": 1, "2026-11-29": 0} {
		if n, err := s.Usage("alice", day, s.now()); err != nil || n != want {
			t.Errorf("%s: %d, %v; want %d", day, n, err, want)
		}
	}
	if n, err := s.Usage("alice2", "2026-11-27", s.now()); err != nil || n != 0 {
		t.Errorf("a longer name sharing the prefix sees %d, %v", n, err)
	}
}

func TestSecondOpenFailsClearly(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	defer s.Close()
	_, err := Open(dir, Options{HistoryDays: 400})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second open: %v, want ErrLocked", err)
	}
}

func TestEngineOnBadgerNeverExceedsLimit(t *testing.T) {
	s := open(t, t.TempDir())
	defer s.Close()
	loc, _ := time.LoadLocation("America/New_York")
	var accts quota.FileAccountsBuilder
	accts.Add([]byte("alice"), 100, quota.StatusActive, false)
	tab, _ := accts.Build()
	e, err := quota.NewEngine(quota.NewLocal(s, time.Minute), s, quota.Settings{HoldTTL: time.Hour, Location: loc, Accounts: tab})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, loc)
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			for range 5 {
				var txn quota.Txn
				for range 3 {
					if _, err := e.Reserve(context.Background(), &txn, "alice", now); err != nil {
						t.Error(err)
					}
				}
				if _, err := e.Commit(context.Background(), &txn, now); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if n, err := s.Usage("alice", quota.DayOf(now, loc), s.now()); err != nil || n != 100 {
		t.Fatalf("750 attempts against limit 100 committed %d, %v", n, err)
	}
}

// TestKillNineLosesNoCommittedRelay runs a child that commits relays and
// prints each acknowledged total, kills it with SIGKILL mid-stream, and
// checks that the reopened store holds at least the last acknowledged total.
func TestKillNineLosesNoCommittedRelay(t *testing.T) {
	if dir := os.Getenv("RELAYCAP_KILL9_DIR"); dir != "" {
		commitForever(dir)
		return
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestKillNineLosesNoCommittedRelay$")
	cmd.Env = append(os.Environ(), "RELAYCAP_KILL9_DIR="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var acked int64
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if n, err := strconv.ParseInt(sc.Text(), 10, 64); err == nil {
			acked = n
			if acked >= 2000 {
				break
			}
		}
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	if acked < 2000 {
		t.Fatalf("child acknowledged only %d commits", acked)
	}
	s := open(t, dir)
	defer s.Close()
	n, err := s.Usage("alice", "2026-11-27", s.now())
	if err != nil || n < acked {
		t.Fatalf("after kill -9: usage %d (%v), acknowledged %d", n, err, acked)
	}
}

func commitForever(dir string) {
	s, err := Open(dir, Options{HistoryDays: 400, SyncWrites: false})
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(1)
	}
	for {
		n, err := s.AddUsage("alice", []quota.DayCount{{Day: "2026-11-27", N: 1}})
		if err != nil {
			fmt.Println("add:", err)
			os.Exit(1)
		}
		fmt.Println(n[0])
	}
}

// TestCloseWaitsForCommitsInFlight: commits racing Close either finish
// before Badger closes, and are then durable, or fail with ErrClosed; none
// panics, hangs or is half done. Writers keep committing until they are
// refused, and Close comes once some commits are in.
func TestCloseWaitsForCommitsInFlight(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{HistoryDays: 1, SyncWrites: true})
	if err != nil {
		t.Fatal(err)
	}
	var ok, refused atomic.Int64
	var wg sync.WaitGroup
	// One account per goroutine: the engine serialises an account's
	// commits, and the store relies on it.
	const writers = 8
	for i := range writers {
		wg.Go(func() {
			for {
				_, err := s.AddUsage(fmt.Sprint("user", i), []quota.DayCount{{Day: "2026-11-27", N: 1}})
				switch {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, ErrClosed):
					refused.Add(1)
					return
				default:
					t.Errorf("commit racing Close: %v", err)
					return
				}
			}
		})
	}
	for deadline := time.Now().Add(30 * time.Second); ok.Load() < writers && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if ok.Load() == 0 || refused.Load() != writers {
		t.Fatalf("%d commits before Close, %d writers refused after; want some and all %d", ok.Load(), refused.Load(), writers)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := s.Usage("user0", "2026-11-27", s.now()); !errors.Is(err, ErrClosed) {
		t.Errorf("Usage after Close: %v, want ErrClosed", err)
	}
	s = open(t, dir)
	defer s.Close()
	var n int64
	for i := range writers {
		u, err := s.Usage(fmt.Sprint("user", i), "2026-11-27", s.now())
		if err != nil {
			t.Fatal(err)
		}
		n += u
	}
	if n != ok.Load() {
		t.Errorf("after reopen usage %d, want the %d acknowledged commits", n, ok.Load())
	}
}

// TestUsageExpiresAfterItsHistory: a day's usage is kept for HistoryDays
// plus two (the day itself and the widest zone offset), then Badger drops
// it. Badger checks expiry against the wall clock, so the test reads the
// expiry it stored instead of waiting for it.
func TestUsageExpiresAfterItsHistory(t *testing.T) {
	for _, days := range []int{1, 400} {
		s, err := Open(t.TempDir(), Options{HistoryDays: days})
		if err != nil {
			t.Fatal(err)
		}
		before := time.Now()
		if _, err := s.AddUsage("alice", []quota.DayCount{{Day: "2026-11-27", N: 1}, {Day: "2026-11-28", N: 1}}); err != nil {
			t.Fatal(err)
		}
		after := time.Now()
		keep := time.Duration(days+2) * 24 * time.Hour
		for _, day := range []quota.Day{"2026-11-27", "2026-11-28"} {
			var expires uint64
			if err := s.db.View(func(txn *badger.Txn) error {
				item, err := txn.Get(usageKey("alice", day))
				if err == nil {
					expires = item.ExpiresAt()
				}
				return err
			}); err != nil {
				t.Fatal(err)
			}
			// ExpiresAt is in whole Unix seconds.
			lo, hi := before.Add(keep).Unix(), after.Add(keep).Unix()+1
			if int64(expires) < lo || int64(expires) > hi {
				t.Errorf("history %d days, %s: expires at %s, want %s after the write",
					days, day, time.Unix(int64(expires), 0).UTC(), keep)
			}
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
