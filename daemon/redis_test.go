package daemon

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	gomilter "github.com/d--j/go-milter"

	"github.com/relaycap/relaycap/admin"
	"github.com/relaycap/relaycap/internal/redistest"
	"github.com/relaycap/relaycap/quota"
)

var redisPrefixes atomic.Int64

// redisBody is a config on store.backend redis at addr, with alice's
// limit; every test gets key prefix of its own.
func redisBody(addr, prefix string, aliceLimit int) string {
	return fmt.Sprintf("store: {backend: redis, sync_writes: false, redis: {addrs: [%q], key_prefix: %q, timeout: 300ms, hold_ttl: 1h}}\n"+
		"quota: {accounts: {alice: %d}}\n", addr, prefix, aliceLimit)
}

func newPrefix() string { return fmt.Sprintf("d%d:", redisPrefixes.Add(1)) }

// send runs one message of one recipient from alice; it returns the RCPT
// reply ("" if accepted) and the final action (nil if refused at RCPT).
func send(t *testing.T, td *testDaemon) (string, *gomilter.Action) {
	t.Helper()
	s := td.milterSession(t)
	s.mail("alice")
	if _, refused := s.rcpts(1); len(refused) > 0 {
		return refused[0], nil
	}
	_, act := s.data(plainHeaders)
	return "", act
}

// sendAlternating sends n one-recipient messages, alternating over hosts,
// and returns how many were accepted. A message accepted at RCPT must be
// accepted at end of message; one refused at RCPT must be refused as
// refusal says (want names it in the failure).
func sendAlternating(t *testing.T, hosts []*testDaemon, n int, refusal func(rcpt string) bool, want string) int {
	t.Helper()
	accepted := 0
	for i := range n {
		rcpt, act := send(t, hosts[i%len(hosts)])
		switch {
		case rcpt == "" && act.Type == gomilter.ActionAccept:
			accepted++
		case rcpt == "":
			t.Fatalf("message %d: accepted at RCPT, then %v", i, act)
		case !refusal(rcpt):
			t.Fatalf("message %d: RCPT refused with %q, want %s", i, rcpt, want)
		}
	}
	return accepted
}

// TestTwoDaemonsShareOneRedisQuota: two daemons with state dirs of their
// own on one Redis: alice's limit of 5 holds across both, and both report
// the same usage.
func TestTwoDaemonsShareOneRedisQuota(t *testing.T) {
	srv := redistest.Start(t)
	body := redisBody(srv.Addr, newPrefix(), 5)
	hosts := []*testDaemon{startDaemon(t, body), startDaemon(t, body)}
	accepted := sendAlternating(t, hosts, 8, func(rcpt string) bool { return strings.HasPrefix(rcpt, "450 4.7.1") }, "450 4.7.1 (over quota)")
	if accepted != 5 {
		t.Fatalf("8 messages over two hosts with limit 5: %d accepted", accepted)
	}
	for i, h := range hosts {
		d, err := h.Engine().Usage(context.Background(), "alice", h.clock.now())
		if err != nil || d.Used != 5 || d.Reserved != 0 {
			t.Errorf("host %d: usage %+v, %v; want 5 used", i, d, err)
		}
	}
}

// TestStalledRedisIsATemporaryFailure: redis-server stopped (SIGSTOP) gives
// 451 4.3.0 at end of message and at RCPT, DEFER_IF_PERMIT 4.3.0 from the
// policy service, and counts nothing; after SIGCONT mail flows again
// without a restart.
func TestStalledRedisIsATemporaryFailure(t *testing.T) {
	srv := redistest.Start(t)
	td := startDaemon(t, redisBody(srv.Addr, newPrefix(), 5))
	p := td.policyConn(t)
	if a := p.ask(rcptRequest("alice")); a != "DUNNO" {
		t.Fatalf("policy with Redis up: %q", a)
	}
	open := td.milterSession(t)
	open.mail("alice")
	if n, refused := open.rcpts(1); n != 1 {
		t.Fatalf("RCPT with Redis up: %v", refused)
	}

	srv.Pause(t)
	defer srv.Resume(t) // also if the test fails before SIGCONT
	if _, act := open.data(plainHeaders); act.SMTPCode != 451 || !strings.HasPrefix(act.SMTPReply, "451 4.3.0") {
		t.Fatalf("end of message with Redis stopped: %v, want 451 4.3.0", act)
	}
	if rcpt, _ := send(t, td); !strings.HasPrefix(rcpt, "451 4.3.0") {
		t.Fatalf("RCPT with Redis stopped: %q, want 451 4.3.0", rcpt)
	}
	if a := p.ask(rcptRequest("alice")); !strings.HasPrefix(a, "DEFER_IF_PERMIT 4.3.0 ") {
		t.Fatalf("policy with Redis stopped: %q, want DEFER_IF_PERMIT 4.3.0", a)
	}
	wantDecision(t, td.logs.String(), "alice", map[string]string{"accepted": "0", "result": "tempfail"})

	srv.Resume(t)
	// The breaker lets a probe through after its cooldown.
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if a := p.ask(rcptRequest("alice")); a == "DUNNO" {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("policy 15 s after SIGCONT: %q, want DUNNO", a)
		}
	}
	if rcpt, act := send(t, td); rcpt != "" || act.Type != gomilter.ActionAccept {
		t.Fatalf("after SIGCONT: RCPT %q, end %v; want accepted", rcpt, act)
	}
	d, err := td.Engine().Usage(context.Background(), "alice", td.clock.now())
	if err != nil || d.Used != 1 {
		t.Fatalf("after recovery: %+v, %v; want only the message sent after SIGCONT counted", d, err)
	}
}

// TestAdminChangeAppliesOnEveryHost: with the redis backend the accounts
// are shared: an account created, sold relays and suspended through one
// host's admin socket applies to the next RCPT on the other host.
func TestAdminChangeAppliesOnEveryHost(t *testing.T) {
	srv := redistest.Start(t)
	body := redisBody(srv.Addr, newPrefix(), 5)
	one, other := startDaemon(t, body), startDaemon(t, body)
	c, err := admin.NewClient("unix:"+filepath.Join(one.dir, "state", "admin.sock"), "")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	sendAs := func(login string) string {
		t.Helper()
		s := other.milterSession(t)
		s.mail(login)
		if _, refused := s.rcpts(1); len(refused) > 0 {
			return refused[0]
		}
		if _, act := s.data(plainHeaders); act.Type != gomilter.ActionAccept {
			t.Fatalf("%s: end of message %v", login, act)
		}
		return ""
	}
	if r := sendAs("carol"); r == "" {
		t.Fatalf("carol before she exists: %q, want refused (not provisioned)", r)
	}
	limit := int64(1)
	if _, err := c.PutAccount(ctx, "carol", admin.AccountRequest{DailyLimit: &limit}); err != nil {
		t.Fatal(err)
	}
	if r := sendAs("carol"); r != "" {
		t.Fatalf("carol created on the other host with limit 1: %q, want accepted", r)
	}
	if r := sendAs("carol"); !strings.HasPrefix(r, "450 4.7.1") {
		t.Fatalf("carol's second relay: %q, want over quota", r)
	}
	if _, err := c.Purchase(ctx, "carol", admin.PurchaseRequest{Relays: 1, PurchaseID: "order-1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Purchase(ctx, "carol", admin.PurchaseRequest{Relays: 1, PurchaseID: "order-1"}); err != nil {
		t.Fatalf("the same purchase again: %v", err)
	}
	if r := sendAs("carol"); r != "" {
		t.Fatalf("after buying one relay on the other host: %q, want accepted", r)
	}
	if r := sendAs("carol"); !strings.HasPrefix(r, "450 4.7.1") {
		t.Fatalf("a purchase replayed counted twice: %q, want over quota", r)
	}
	if _, err := c.Purchase(ctx, "carol", admin.PurchaseRequest{Relays: 1, PurchaseID: "order-2", TodayOnly: true}); err != nil {
		t.Fatal(err)
	}
	if r := sendAs("carol"); r != "" {
		t.Fatalf("after a today-only top-up of one relay: %q, want accepted", r)
	}
	if r := sendAs("carol"); !strings.HasPrefix(r, "450 4.7.1") {
		t.Fatalf("after the top-up was used: %q, want over quota", r)
	}
	if d := other.check(t, "carol"); d.Limit != 3 || d.Used != 3 {
		t.Fatalf("carol on the other host: %+v, want used 3 of a limit of 2 + 1 top-up", d)
	}
	more := int64(10)
	if _, err := c.PutAccount(ctx, "carol", admin.AccountRequest{DailyLimit: &more}); err != nil {
		t.Fatal(err)
	}
	open := other.milterSession(t)
	open.mail("carol")
	if n, refused := open.rcpts(1); n != 1 {
		t.Fatalf("carol with limit 10: %v", refused)
	}
	if _, err := c.PutAccount(ctx, "carol", admin.AccountRequest{DailyLimit: &more, Status: "suspended", Reason: "test"}); err != nil {
		t.Fatal(err)
	}
	if _, act := open.data(plainHeaders); act.Type == gomilter.ActionAccept {
		t.Fatalf("end of message on the other host after a suspension on one: %v, want refused", act)
	}
	if d := other.check(t, "carol"); d.Verdict != quota.Suspended {
		t.Fatalf("carol suspended on one host, on the other: %v", d.Verdict)
	}
	if d, err := other.Engine().Usage(ctx, "carol", other.clock.now()); err != nil || d.Used != 3 || d.Reserved != 0 {
		t.Fatalf("after the refused message: %+v %v; want 3 used, nothing held", d, err)
	}
}
