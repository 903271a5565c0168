package quota

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// gatedStore is a Store whose AddUsage waits until the test opens its
// gate, so a test can look at a counter while a commit's write is under
// way.
type gatedStore struct {
	mu      sync.Mutex
	usage   map[Day]int64
	entered chan struct{} // one value per AddUsage that started
	gate    chan error    // what each AddUsage returns, once sent
}

func newGatedStore() *gatedStore {
	return &gatedStore{usage: map[Day]int64{}, entered: make(chan struct{}, 8), gate: make(chan error)}
}

func (g *gatedStore) Usage(_ string, d Day, _ time.Time) (int64, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.usage[d], nil
}

func (g *gatedStore) AddUsage(_ string, add []DayCount) ([]int64, error) {
	g.entered <- struct{}{}
	if err := <-g.gate; err != nil {
		return nil, err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	var totals []int64
	for _, dc := range add {
		g.usage[dc.Day] += dc.N
		totals = append(totals, g.usage[dc.Day])
	}
	return totals, nil
}

func (g *gatedStore) Writable(time.Time) error { return nil }

func hold(id string, now time.Time) Hold {
	return Hold{ID: id, Account: "alice", Day: "2026-12-01", N: 1, Expires: now.Add(time.Hour)}
}

// TestLocalCommitDoesNotBlockTheAccount: while one commit's write syncs,
// the same account's reservations and checks go on, counting the
// committing relays as reserved, so the limit holds exactly; once the
// write is in, they count as used. A second commit of the same
// transaction meanwhile is refused, not counted twice.
func TestLocalCommitDoesNotBlockTheAccount(t *testing.T) {
	ctx := context.Background()
	st := newGatedStore()
	l := NewLocal(st, time.Minute)
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	for _, id := range []string{"h1", "h2"} {
		if _, ok, err := l.Reserve(ctx, hold(id, now), 3, now); err != nil || !ok {
			t.Fatalf("reserve %s: %v, %v", id, ok, err)
		}
	}
	done := make(chan error, 1)
	go func() {
		_, err := l.Commit(ctx, "t1", []Hold{hold("h1", now), hold("h2", now)}, 3, now)
		done <- err
	}()
	<-st.entered // the write is under way
	c, err := l.Peek(ctx, "alice", "2026-12-01", now)
	if err != nil || c.Used != 0 || c.Reserved != 2 {
		t.Fatalf("during the write: %+v, %v; want 0 used, 2 reserved", c, err)
	}
	if _, ok, err := l.Reserve(ctx, hold("h3", now), 3, now); err != nil || !ok {
		t.Fatalf("the last relay during the write: %v, %v", ok, err)
	}
	if _, ok, err := l.Reserve(ctx, hold("h4", now), 3, now); err != nil || ok {
		t.Fatalf("a relay over the limit during the write: granted %v, %v", ok, err)
	}
	if _, err := l.Commit(ctx, "t1", []Hold{hold("h1", now), hold("h2", now)}, 3, now); err == nil || !strings.Contains(err.Error(), "being committed") {
		t.Fatalf("the same transaction again during its write: %v", err)
	}
	if err := l.Release(ctx, []Hold{hold("h1", now)}); err != nil {
		t.Fatal(err)
	}
	st.gate <- nil
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	c, err = l.Peek(ctx, "alice", "2026-12-01", now)
	if err != nil || c.Used != 2 || c.Reserved != 1 {
		t.Fatalf("after the write: %+v, %v; want 2 used (a release cannot undo a commit under way), 1 reserved", c, err)
	}
}

// TestLocalFailedWriteRereadsTheCount: after a failed write nothing is
// counted, and the count is read from the store again, once no other write
// is under way (the failed one might have landed after all).
func TestLocalFailedWriteRereadsTheCount(t *testing.T) {
	ctx := context.Background()
	st := newGatedStore()
	l := NewLocal(st, time.Minute)
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	for _, id := range []string{"h1", "h2"} {
		if _, ok, err := l.Reserve(ctx, hold(id, now), 10, now); err != nil || !ok {
			t.Fatalf("reserve %s: %v, %v", id, ok, err)
		}
	}
	errs := make(chan error, 2)
	go func() { _, err := l.Commit(ctx, "t1", []Hold{hold("h1", now)}, 10, now); errs <- err }()
	<-st.entered
	go func() { _, err := l.Commit(ctx, "t2", []Hold{hold("h2", now)}, 10, now); errs <- err }()
	<-st.entered
	boom := errors.New("disk on fire")
	st.gate <- boom // t1 (or t2) fails…
	if err := <-errs; !errors.Is(err, boom) {
		t.Fatalf("failed write: %v", err)
	}
	st.mu.Lock()
	st.usage["2026-12-01"] = 5 // …and what the store holds is news to Local
	st.mu.Unlock()
	if _, err := l.Peek(ctx, "alice", "2026-12-01", now); err == nil {
		t.Fatal("a count while unsure and a write is under way: no error")
	}
	st.gate <- nil
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	if c, err := l.Peek(ctx, "alice", "2026-12-01", now); err != nil || c.Used != 6 || c.Reserved != 0 {
		t.Fatalf("after both writes: %+v, %v; want the store's 6", c, err)
	}
}
