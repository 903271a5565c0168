package daemon

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	gomilter "github.com/d--j/go-milter"

	"github.com/relaycap/relaycap/internal/redistest"
	"github.com/relaycap/relaycap/notify"
	"github.com/relaycap/relaycap/quota"
)

// TestHourlyBrake: hourly_limit 3, five recipients at 14:40 EST: three go,
// two get 450 4.7.1 with the hour the brake lifts, at the milter and at
// the policy service; the receiver gets one burst event for the hour; at
// 15:00 the account relays again.
func TestHourlyBrake(t *testing.T) {
	clk := &clock{}
	clk.set(time.Date(2026, 11, 27, 19, 40, 0, 0, time.UTC)) // 14:40 EST
	r := newHookReceiver(t, clk.now)
	td := startDaemon(t, metricsOn+notifyConfig(r.srv.URL, writeSecret(t))+"quota: {accounts: {alice@example.com: {daily_limit: 100, hourly_limit: 3}}}\n")
	td.clock = clk
	td.stop()
	td.start(t)

	s := td.milterSession(t)
	s.mail("alice@example.com")
	n, refused := s.rcpts(5)
	if n != 3 || len(refused) != 2 {
		t.Fatalf("accepted %d, refused %v; want 3 and 2", n, refused)
	}
	for _, rep := range refused {
		if !strings.HasPrefix(rep, "450 4.7.1 ") || !strings.Contains(rep, "hourly relay limit of 3 reached; try again after 15:00 EST") {
			t.Fatalf("refusal %q", rep)
		}
	}
	s.data(plainHeaders)
	wantDecision(t, td.logs.String(), "alice@example.com", map[string]string{"accepted": "3", "refused": "2", "used": "3"})
	p := td.policyConn(t)
	if a := p.ask(rcptRequest("alice@example.com")); !strings.HasPrefix(a, "DEFER_IF_PERMIT 4.7.1 ") || !strings.Contains(a, "try again after 15:00 EST") {
		t.Fatalf("policy: %s", a)
	}
	ev := r.waitFor(t, "burst")
	if ev.Type != notify.TypeBurst || ev.Account != "alice@example.com" || ev.Limit != 3 || ev.Used != 3 ||
		ev.Hour != "2026-11-27T14:00:00-05:00" || ev.ResetsAt == nil || !ev.ResetsAt.Equal(time.Date(2026, 11, 27, 20, 0, 0, 0, time.UTC)) {
		t.Fatalf("burst event: %+v", ev)
	}
	f := td.scrape(t)
	want(t, f, 2, "relaycap_recipients_refused_total", "service", "milter", "reason", "over_hourly_limit")
	want(t, f, 1, "relaycap_recipients_refused_total", "service", "policy", "reason", "over_hourly_limit")

	clk.set(time.Date(2026, 11, 27, 20, 0, 0, 0, time.UTC)) // 15:00 EST
	if a := p.ask(rcptRequest("alice@example.com")); a != "DUNNO" {
		t.Fatalf("policy at 15:00: %s", a)
	}
	s.mail("alice@example.com")
	if n, _ := s.rcpts(4); n != 3 {
		t.Fatalf("at 15:00 accepted %d of 4, want 3", n)
	}
	s.data(plainHeaders)
	if ev := r.waitFor(t, "second hour's burst"); ev.Type != notify.TypeBurst || ev.Hour != "2026-11-27T15:00:00-05:00" {
		t.Fatalf("second burst event: %+v", ev)
	}
	r.check(t)
}

// TestBurstSuspend: with burst_action suspend a store-managed account that
// reaches its hourly limit is suspended, "hourly limit reached" in the
// audit trail, an account.status event at the receiver, and stays
// suspended in the next hour until an operator resumes it.
func TestBurstSuspend(t *testing.T) {
	clk := &clock{}
	clk.set(time.Date(2026, 11, 27, 19, 40, 0, 0, time.UTC))
	r := newHookReceiver(t, clk.now)
	td := startDaemon(t, notifyConfig(r.srv.URL, writeSecret(t))+"quota: {default_hourly_limit: 2, burst_action: suspend}\n")
	td.clock = clk
	td.stop()
	td.start(t)
	c := td.adminClient(t)
	provision(t, c, "mallory@example.com", 100)

	s := td.milterSession(t)
	s.mail("mallory@example.com")
	if n, refused := s.rcpts(3); n != 2 || len(refused) != 1 || !strings.Contains(refused[0], "hourly relay limit of 2") {
		t.Fatalf("accepted %d, refused %v", n, refused)
	}
	// Suspended since its recipients were accepted: the message is refused
	// at end of message, nothing counted.
	if _, act := s.data(plainHeaders); !strings.HasPrefix(act.SMTPReply, "550 5.7.1") {
		t.Fatalf("end of message after the brake: %+v", act)
	}
	a, err := c.Audit(bg, "mallory@example.com", 5)
	if err != nil || len(a.Entries) == 0 {
		t.Fatalf("audit: %+v %v", a, err)
	}
	e := a.Entries[0]
	if e.Action != "suspend" || e.Reason != "hourly limit reached" || e.Actor != "relaycap (burst brake)" || e.After == nil || e.After.Status != "suspended" {
		t.Fatalf("newest audit entry: %+v", e)
	}
	var kinds []string
	for range 2 {
		ev := r.waitFor(t, "burst and suspension")
		kinds = append(kinds, string(ev.Type)+":"+ev.Status)
	}
	if strings.Join(kinds, ",") != "quota.burst:,account.status:suspended" {
		t.Fatalf("events %v, want the burst then the suspension", kinds)
	}

	clk.set(time.Date(2026, 11, 27, 20, 5, 0, 0, time.UTC))
	p := td.policyConn(t)
	if a := p.ask(rcptRequest("mallory@example.com")); !strings.HasPrefix(a, "REJECT 5.7.1") {
		t.Fatalf("next hour, still suspended: %s", a)
	}
	if _, err := c.SetStatus(bg, "mallory@example.com", "resume", "customer changed the password"); err != nil {
		t.Fatal(err)
	}
	if a := p.ask(rcptRequest("mallory@example.com")); a != "DUNNO" {
		t.Fatalf("after the resume: %s", a)
	}
}

// TestHourlyBrakeAcrossTwoDaemonsOnRedis: the hour is counted in the
// shared counter, so two hosts on one Redis grant 3 between them.
func TestHourlyBrakeAcrossTwoDaemonsOnRedis(t *testing.T) {
	srv := redistest.Start(t)
	body := fmt.Sprintf("store: {backend: redis, sync_writes: false, redis: {addrs: [%q], key_prefix: %q, timeout: 300ms, hold_ttl: 1h}}\n"+
		"quota: {accounts: {alice: {daily_limit: 100, hourly_limit: 3}}}\n", srv.Addr, newPrefix())
	hosts := []*testDaemon{startDaemon(t, body), startDaemon(t, body)}
	accepted := sendAlternating(t, hosts, 6, func(rcpt string) bool { return strings.Contains(rcpt, "hourly relay limit of 3 reached") }, "the hourly limit")
	if accepted != 3 {
		t.Fatalf("6 messages over two hosts with an hourly limit of 3: %d accepted", accepted)
	}
	for i, h := range hosts {
		d, err := h.Engine().Check(context.Background(), "alice", h.clock.now())
		if err != nil || d.Verdict != quota.OverHourly || d.Hour.Used != 3 || d.Used != 3 {
			t.Errorf("host %d: %+v, %v; want over the hourly limit with 3 used", i, d, err)
		}
	}
}

// TestEventsOnceAcrossHostsOnRedis: two daemons on one Redis, each with an
// outbox of its own, send alice's first refusal of the day once between
// them: the once key is claimed in Redis.
func TestEventsOnceAcrossHostsOnRedis(t *testing.T) {
	srv := redistest.Start(t)
	r := newHookReceiver(t, time.Now)
	secret := writeSecret(t)
	body := fmt.Sprintf("store: {backend: redis, sync_writes: false, redis: {addrs: [%q], key_prefix: %q, timeout: 300ms, hold_ttl: 1h}}\n"+
		"quota: {accounts: {alice: 1, bob: 1}}\n", srv.Addr, newPrefix()) +
		fmt.Sprintf("notify: {webhook_url: %q, secret_file: %q, thresholds: [100]}\n", r.srv.URL, secret)
	a, b := startDaemon(t, body), startDaemon(t, body)
	for _, h := range []*testDaemon{a, b} {
		h.clock.set(time.Now())
	}
	if rcpt, _ := send(t, a); rcpt != "" {
		t.Fatalf("alice's one relay refused: %s", rcpt)
	}
	if ev := r.waitFor(t, "alice's 100 %"); ev.Type != notify.TypeThreshold || ev.Account != "alice" {
		t.Fatalf("got %+v", ev)
	}
	for _, h := range []*testDaemon{a, b, a, b} {
		if rcpt, _ := send(t, h); !strings.HasPrefix(rcpt, "450 4.7.1") {
			t.Fatalf("alice over her limit: %q", rcpt)
		}
	}
	if ev := r.waitFor(t, "alice's refusal"); ev.Type != notify.TypeQuotaRefused || ev.Account != "alice" {
		t.Fatalf("got %+v", ev)
	}
	// bob's event comes from host b after any duplicate b would have sent.
	s := b.milterSession(t)
	s.mail("bob")
	s.rcpts(1)
	s.data(plainHeaders)
	if ev := r.waitFor(t, "bob's 100 %"); ev.Account != "bob" {
		t.Fatalf("got %+v, want bob's threshold", ev)
	}
	r.check(t)
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.events) != 3 {
		t.Fatalf("receiver got %d events, want 3 (one refusal between two hosts): %+v", len(r.events), r.events)
	}
}

// TestHourlyBrakeOnRedisForAStoreAccount: a store-managed account on
// Redis (its record read in the counter's own call) gets the default
// hourly limit, across two hosts.
func TestHourlyBrakeOnRedisForAStoreAccount(t *testing.T) {
	srv := redistest.Start(t)
	body := fmt.Sprintf("store: {backend: redis, sync_writes: false, redis: {addrs: [%q], key_prefix: %q, timeout: 300ms, hold_ttl: 1h}}\n"+
		"quota: {default_hourly_limit: 2}\n", srv.Addr, newPrefix())
	hosts := []*testDaemon{startDaemon(t, body), startDaemon(t, body)}
	provision(t, hosts[0].adminClient(t), "carol", 100)
	accepted := 0
	for i := range 5 {
		s := hosts[i%2].milterSession(t)
		s.mail("carol")
		n, refused := s.rcpts(1)
		if n == 1 {
			if _, act := s.data(plainHeaders); act.Type != gomilter.ActionAccept {
				t.Fatalf("message %d: %v", i, act)
			}
			accepted++
		} else if !strings.Contains(refused[0], "hourly relay limit of 2 reached") {
			t.Fatalf("message %d refused with %q", i, refused[0])
		}
	}
	if accepted != 2 {
		t.Fatalf("carol relayed %d in one hour over two hosts, want 2", accepted)
	}
}
