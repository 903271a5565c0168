package redisstore

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/relaycap/relaycap/internal/redistest"
	"github.com/relaycap/relaycap/quota"
	"github.com/relaycap/relaycap/quota/storetest"
)

var prefixes atomic.Int64

// open connects to addrs under a key prefix of its own, which makes the
// store fresh and empty for the test.
func open(t testing.TB, addrs []string, keep time.Duration, wait int) *Store {
	t.Helper()
	if keep == 0 {
		keep = 400 * 24 * time.Hour
	}
	s, err := Open(context.Background(), Options{
		Addrs: addrs, KeyPrefix: fmt.Sprintf("t%d:", prefixes.Add(1)),
		Timeout: 2 * time.Second, KeepUsage: keep, WaitReplicas: wait,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestContractSingleNode(t *testing.T) {
	srv := redistest.Start(t)
	storetest.TestCounter(t, func(t *testing.T, o storetest.CounterOptions) quota.Counter {
		return open(t, []string{srv.Addr}, o.KeepUsage, 0)
	})
}

func TestContractCluster(t *testing.T) {
	c := redistest.StartCluster(t, 3)
	storetest.TestCounter(t, func(t *testing.T, o storetest.CounterOptions) quota.Counter {
		return open(t, c.Addrs(), o.KeepUsage, 0)
	})
}

// TestAccountsSpreadOverTheCluster: the keys of different accounts land on
// different nodes, and each account's keys on one (no CROSSSLOT).
func TestAccountsSpreadOverTheCluster(t *testing.T) {
	c := redistest.StartCluster(t, 3)
	s := open(t, c.Addrs(), 0, 0)
	ctx := context.Background()
	now := time.Now()
	for i := range 30 {
		acct := fmt.Sprint("user", i)
		h := quota.Hold{ID: "h" + acct, Account: acct, Day: "2026-11-27", N: 1, Expires: now.Add(time.Hour)}
		h2 := quota.Hold{ID: "h2" + acct, Account: acct, Day: "2026-11-28", N: 1, Expires: now.Add(time.Hour)}
		for _, h := range []quota.Hold{h, h2} {
			if _, ok, err := s.Reserve(ctx, h, 5, now); err != nil || !ok {
				t.Fatalf("reserve %s: %v %v", acct, ok, err)
			}
		}
		if _, err := s.Commit(ctx, "t"+acct, []quota.Hold{h, h2}, 5, now); err != nil {
			t.Fatalf("commit %s over two days: %v", acct, err)
		}
	}
	used := 0
	for _, n := range c.Nodes {
		out, err := n.Do("DBSIZE")
		if err != nil {
			t.Fatal(err)
		}
		if out != ":0" {
			used++
		}
	}
	if used < 2 {
		t.Fatalf("30 accounts' keys are on %d node(s), want them spread", used)
	}
}

// TestFailsClosedAndRecovers: a stalled Redis (SIGSTOP) makes calls fail
// within the timeout; the breaker then refuses at once; once Redis runs
// again, calls succeed with no new store.
func TestFailsClosedAndRecovers(t *testing.T) {
	srv := redistest.Start(t)
	s, err := Open(context.Background(), Options{Addrs: []string{srv.Addr}, KeyPrefix: "stall:", Timeout: 200 * time.Millisecond, KeepUsage: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	hold := func(i int) quota.Hold {
		return quota.Hold{ID: fmt.Sprint("h", i), Account: "alice", Day: "2026-11-27", N: 1, Expires: time.Now().Add(time.Hour)}
	}
	if _, ok, err := s.Reserve(ctx, hold(0), 10, time.Now()); err != nil || !ok {
		t.Fatalf("healthy: %v %v", ok, err)
	}
	srv.Pause(t)
	var last error
	for i := range 5 {
		_, ok, err := s.Reserve(ctx, hold(1), 10, time.Now())
		if err == nil || ok {
			srv.Resume(t)
			t.Fatalf("call %d to a stopped Redis: granted=%v err=%v, want an error", i, ok, err)
		}
		last = err
	}
	if !errors.Is(last, ErrUnavailable) || !s.brk.open() {
		srv.Resume(t)
		t.Fatalf("after 5 failures: %v, want the breaker open", last)
	}
	srv.Resume(t)
	var c quota.Count
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if c, err = s.Peek(ctx, "alice", "2026-11-27", time.Now()); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no recovery after SIGCONT: %v", err)
		}
	}
	// The reserve that timed out may or may not have reached Redis before
	// the stop; hold 0 is there either way.
	if c.Reserved < 1 || c.Reserved > 2 || c.Used != 0 {
		t.Fatalf("after recovery: %+v", c)
	}
}

// TestWaitReplicasRefusesAnUnreplicatedCommit: with wait_replicas 1 and no
// replica, the commit is refused (the message gets 4.3.0).
func TestWaitReplicasRefusesAnUnreplicatedCommit(t *testing.T) {
	srv := redistest.Start(t)
	s, err := Open(context.Background(), Options{Addrs: []string{srv.Addr}, KeyPrefix: "wait:", Timeout: 300 * time.Millisecond, KeepUsage: time.Hour, WaitReplicas: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	h := quota.Hold{ID: "h", Account: "alice", Day: "2026-11-27", N: 1, Expires: time.Now().Add(time.Hour)}
	if _, ok, err := s.Reserve(ctx, h, 10, time.Now()); err != nil || !ok {
		t.Fatalf("reserve: %v %v", ok, err)
	}
	if _, err := s.Commit(ctx, "t", []quota.Hold{h}, 10, time.Now()); err == nil {
		t.Fatal("commit without the replica it must wait for: no error")
	}
}

func TestOpenRefusesAnUnreachableRedis(t *testing.T) {
	_, err := Open(context.Background(), Options{Addrs: []string{"unix:" + t.TempDir() + "/none.sock"}, Timeout: 200 * time.Millisecond, KeepUsage: time.Hour})
	if err == nil {
		t.Fatal("open of a socket nobody listens on: no error")
	}
}

// TestOneRoundTripPerCall: a policy check, a RCPT and an end of message of
// a store-managed account are one command each from the client (a hook on
// go-redis counts them), the account's record read in the same script as
// its count.
func TestOneRoundTripPerCall(t *testing.T) {
	srv := redistest.Start(t)
	s := open(t, []string{srv.Addr}, 0, 0)
	ctx := context.Background()
	loc, _ := time.LoadLocation("America/New_York")
	e, err := quota.NewEngine(s, s, quota.Settings{Location: loc, HoldTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	limit := int64(10)
	if _, err := s.UpdateAccount(ctx, "dana", quota.Change{DailyLimit: &limit}.Apply("dana")); err != nil {
		t.Fatal(err)
	}
	// Each call once first, so the scripts are cached (EVALSHA hits).
	now := time.Now()
	var warm quota.Txn
	if _, err := e.Check(ctx, "dana", now); err != nil {
		t.Fatal(err)
	}
	if d, err := e.Reserve(ctx, &warm, "dana", now); err != nil || !d.Allowed() {
		t.Fatalf("reserve: %+v %v", d, err)
	}
	if _, err := e.Commit(ctx, &warm, now); err != nil {
		t.Fatal(err)
	}
	hook := &countHook{}
	s.c.AddHook(hook)
	var txn quota.Txn
	for _, c := range []struct {
		name string
		want int64
		call func() error
	}{
		{"policy check", 1, func() error { _, err := e.Check(ctx, "dana", now); return err }},
		{"RCPT", 1, func() error { _, err := e.Reserve(ctx, &txn, "dana", now); return err }},
		// The commit script, then the top-N report's own write.
		{"end of message", 2, func() error { _, err := e.Commit(ctx, &txn, now); return err }},
	} {
		before := hook.n.Load()
		if err := c.call(); err != nil {
			t.Fatal(err)
		}
		if n := hook.n.Load() - before; n != c.want {
			t.Errorf("%s: %d round trips, want %d", c.name, n, c.want)
		}
	}
}

// countHook counts the commands and pipelines a client sends.
type countHook struct{ n atomic.Int64 }

func (h *countHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *countHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmd)
	}
}

func (h *countHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmds)
	}
}
