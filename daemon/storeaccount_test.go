package daemon

import (
	"fmt"
	"strings"
	"testing"
	"time"

	gomilter "github.com/d--j/go-milter"

	"github.com/relaycap/relaycap/admin"
	"github.com/relaycap/relaycap/internal/redistest"
)

// TestStoreAccountHourlyLimitAndDryRun: an hourly limit and a dry run set
// through the admin API on a store-managed account are what the milter
// and the policy service enforce, on Badger.
func TestStoreAccountHourlyLimitAndDryRun(t *testing.T) {
	testStoreAccountHourlyLimitAndDryRun(t, "")
}

// TestStoreAccountHourlyLimitAndDryRunOnRedis: the same on Redis, where the
// counter's scripts read the record in the reservation's own round trip.
func TestStoreAccountHourlyLimitAndDryRunOnRedis(t *testing.T) {
	srv := redistest.Start(t)
	testStoreAccountHourlyLimitAndDryRun(t, fmt.Sprintf(
		"store: {backend: redis, sync_writes: false, redis: {addrs: [%q], key_prefix: %q, timeout: 300ms, hold_ttl: 1h}}\n", srv.Addr, newPrefix()))
}

func testStoreAccountHourlyLimitAndDryRun(t *testing.T, store string) {
	td := startDaemon(t, store)
	td.clock.set(time.Date(2026, 11, 27, 19, 40, 0, 0, time.UTC)) // 14:40 EST
	c := td.adminClient(t)
	put := func(name string, req admin.AccountRequest) {
		t.Helper()
		if _, err := c.PutAccount(bg, name, req); err != nil {
			t.Fatalf("put %s: %v", name, err)
		}
	}
	put("carol@example.com", admin.AccountRequest{DailyLimit: ptr(int64(100)), HourlyLimit: ptr(int64(2))})
	put("dave@example.com", admin.AccountRequest{DailyLimit: ptr(int64(1)), DryRun: ptr(true)})

	// carol: the 3rd RCPT of the hour gets the hourly 450.
	s := td.milterSession(t)
	s.mail("carol@example.com")
	n, refused := s.rcpts(3)
	if n != 2 || len(refused) != 1 || !strings.HasPrefix(refused[0], "450 4.7.1 ") ||
		!strings.Contains(refused[0], "hourly relay limit of 2 reached; try again after 15:00 EST") {
		t.Fatalf("carol: accepted %d, refused %q; want 2 and the hourly 450", n, refused)
	}
	if _, act := s.data(plainHeaders); act.Type != gomilter.ActionAccept {
		t.Fatalf("carol's message: %v", act)
	}
	wantDecision(t, td.logs.String(), "carol@example.com", map[string]string{"accepted": "2", "refused": "1", "used": "2"})
	p := td.policyConn(t)
	if a := p.ask(rcptRequest("carol@example.com")); !strings.HasPrefix(a, "DEFER_IF_PERMIT 4.7.1 ") || !strings.Contains(a, "hourly relay limit of 2 reached") {
		t.Fatalf("policy for carol: %s", a)
	}

	// dave: past his daily limit of 1, in dry run: all three go, counted.
	s.mail("dave@example.com")
	if n, refused := s.rcpts(3); n != 3 {
		t.Fatalf("dave (dry run) accepted %d of 3, refused %q", n, refused)
	}
	if _, act := s.data(plainHeaders); act.Type != gomilter.ActionAccept {
		t.Fatalf("dave's message: %v", act)
	}
	wantDecision(t, td.logs.String(), "dave@example.com",
		map[string]string{"accepted": "3", "refused": "0", "used": "3", "limit": "1", "result": "accept", "would_refuse": "2"})
	if a := p.ask(rcptRequest("dave@example.com")); a != "DUNNO" {
		t.Fatalf("policy for dave in dry run: %s", a)
	}
	u, err := c.Usage(bg, "dave@example.com")
	if err != nil || !u.DryRun || u.Used != 3 || u.WouldRefuse != 2 {
		t.Fatalf("dave's usage: %+v, %v", u, err)
	}

	// Dry run off through the API: the next RCPT is refused at once.
	put("dave@example.com", admin.AccountRequest{DryRun: ptr(false)})
	s.mail("dave@example.com")
	if n, refused := s.rcpts(1); n != 0 || len(refused) != 1 || !strings.HasPrefix(refused[0], "450 4.7.1 ") {
		t.Fatalf("dave out of dry run: accepted %d, refused %q", n, refused)
	}
}

func ptr[T any](v T) *T { return &v }
