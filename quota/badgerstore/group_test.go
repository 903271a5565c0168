package badgerstore

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/relaycap/relaycap/quota"
)

// TestConcurrentCommitsAddUp: commits of many accounts at once, which the
// store writes in shared transactions, each return their own account's
// running total, and the totals are on disk after a reopen.
func TestConcurrentCommitsAddUp(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{HistoryDays: 10, SyncWrites: true})
	if err != nil {
		t.Fatal(err)
	}
	const accounts, commits = 16, 40
	errs := make(chan error, accounts)
	var wg sync.WaitGroup
	for a := range accounts {
		wg.Go(func() {
			name := fmt.Sprintf("acct%02d", a)
			for i := range commits {
				// Two days in one commit now and then: all or none.
				add := []quota.DayCount{{Day: "2026-11-27", N: 1}}
				if i%5 == 0 {
					add = append(add, quota.DayCount{Day: "2026-11-28", N: 2})
				}
				totals, err := s.AddUsage(name, add)
				if err != nil {
					errs <- err
					return
				}
				if totals[0] != int64(i+1) {
					errs <- fmt.Errorf("%s commit %d: total %d, want %d", name, i, totals[0], i+1)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir)
	defer s.Close()
	for a := range accounts {
		name := fmt.Sprintf("acct%02d", a)
		if n, err := s.Usage(name, "2026-11-27", s.now()); err != nil || n != commits {
			t.Errorf("%s: %d, %v; want %d", name, n, err, commits)
		}
		if n, err := s.Usage(name, "2026-11-28", s.now()); err != nil || n != 2*commits/5 {
			t.Errorf("%s next day: %d, %v; want %d", name, n, err, 2*commits/5)
		}
	}
}

// TestGroupFailureStaysWithItsAccount: a group holding a commit that
// cannot be written (a broken usage record) writes the others all the
// same; the broken one fails and counts nothing.
func TestGroupFailureStaysWithItsAccount(t *testing.T) {
	s := open(t, t.TempDir())
	defer s.Close()
	if err := s.db.Update(func(txn *badger.Txn) error {
		return txn.Set(usageKey("broken", "2026-11-27"), []byte{1, 2, 3})
	}); err != nil {
		t.Fatal(err)
	}
	batch := []*commit{
		{account: "alice", add: []quota.DayCount{{Day: "2026-11-27", N: 2}}},
		{account: "broken", add: []quota.DayCount{{Day: "2026-11-27", N: 1}}},
		{account: "bob", add: []quota.DayCount{{Day: "2026-11-27", N: 3}}},
	}
	s.writeCommits(batch)
	if batch[1].err == nil || !strings.Contains(batch[1].err.Error(), "3 bytes") {
		t.Errorf("broken record: %v, want its error", batch[1].err)
	}
	for i, want := range map[int]int64{0: 2, 2: 3} {
		c := batch[i]
		if c.err != nil || len(c.totals) != 1 || c.totals[0] != want {
			t.Errorf("%s: %v, %v; want [%d]", c.account, c.totals, c.err, want)
		}
		if n, err := s.Usage(c.account, "2026-11-27", s.now()); err != nil || n != want {
			t.Errorf("%s on disk: %d, %v; want %d", c.account, n, err, want)
		}
	}
}

// TestUsageCacheKeepsNoReadFromBeforeAWrite: a count read from disk just
// before a commit cannot be kept once the commit is in.
func TestUsageCacheKeepsNoReadFromBeforeAWrite(t *testing.T) {
	s := open(t, t.TempDir())
	defer s.Close()
	now := s.now()
	_, epoch, _ := s.usage.get("alice", "2026-11-27", now) // a lookup misses…
	if _, err := s.AddUsage("alice", []quota.DayCount{{Day: "2026-11-27", N: 4}}); err != nil {
		t.Fatal(err)
	}
	s.usage.fill("alice", "2026-11-27", 0, epoch, now) // …and its read comes back late
	if n, err := s.Usage("alice", "2026-11-27", s.now()); err != nil || n != 4 {
		t.Fatalf("usage after the commit: %d, %v; want 4", n, err)
	}
}

// TestKillNineLosesNoGroupedCommit: eight writers commit at once, so their
// commits share transactions; after kill -9 every acknowledged commit of
// every account is on disk.
func TestKillNineLosesNoGroupedCommit(t *testing.T) {
	if dir := os.Getenv("RELAYCAP_KILL9_GROUP_DIR"); dir != "" {
		commitConcurrently(dir)
		return
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestKillNineLosesNoGroupedCommit$")
	cmd.Env = append(os.Environ(), "RELAYCAP_KILL9_GROUP_DIR="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := map[string]int64{}
	total := 0
	sc := bufio.NewScanner(out)
	for sc.Scan() && total < 4000 {
		name, num, ok := strings.Cut(sc.Text(), " ")
		if n, err := strconv.ParseInt(num, 10, 64); ok && err == nil {
			acked[name] = max(acked[name], n)
			total++
		}
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	if total < 4000 {
		t.Fatalf("child acknowledged only %d commits", total)
	}
	s := open(t, dir)
	defer s.Close()
	for name, want := range acked {
		if n, err := s.Usage(name, "2026-11-27", s.now()); err != nil || n < want {
			t.Errorf("%s after kill -9: usage %d (%v), acknowledged %d", name, n, err, want)
		}
	}
}

func commitConcurrently(dir string) {
	s, err := Open(dir, Options{HistoryDays: 400, SyncWrites: false})
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(1)
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			name := fmt.Sprintf("w%d", w)
			for {
				n, err := s.AddUsage(name, []quota.DayCount{{Day: "2026-11-27", N: 1}})
				if err != nil {
					fmt.Println("add:", err)
					os.Exit(1)
				}
				mu.Lock()
				fmt.Println(name, n[0])
				mu.Unlock()
			}
		})
	}
	wg.Wait()
}

// TestUsageCacheStaysBounded fills the cache with far more accounts and
// days than it keeps: each shard's count of days stays right and within
// its share, and what it still holds answers as filled.
func TestUsageCacheStaysBounded(t *testing.T) {
	c := usageCache{ttl: time.Minute}
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	for i := range 3 * usageCacheSize {
		name := fmt.Sprint("user", i)
		for _, day := range []quota.Day{"2026-11-27", "2026-11-27T12"} {
			_, epoch, _ := c.get(name, day, now)
			c.fill(name, day, int64(i), epoch, now)
		}
	}
	held := 0
	for i := range c.shards {
		sh := &c.shards[i]
		days := 0
		for name, a := range sh.entries {
			days += len(a.days)
			for _, e := range a.days {
				if n, _, ok := c.get(name, e.day, now); !ok || n != e.n {
					t.Fatalf("%s %s: %d, %v; want %d", name, e.day, n, ok, e.n)
				}
			}
		}
		if days != sh.size || sh.size > usageCacheSize/usageShards+1 {
			t.Fatalf("shard %d: %d days held, size says %d, share %d", i, days, sh.size, usageCacheSize/usageShards)
		}
		held += days
	}
	if held < usageCacheSize/2 {
		t.Fatalf("only %d of %d days held", held, usageCacheSize)
	}
}
