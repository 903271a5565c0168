package daemon

import (
	"context"
	"fmt"
	"testing"

	gomilter "github.com/d--j/go-milter"

	"github.com/relaycap/relaycap/admin"
	"github.com/relaycap/relaycap/internal/redistest"
	"github.com/relaycap/relaycap/quota"
)

// TestScrapeTalliesAndDayTotal: the account gauges count the file's and
// the store's accounts, and relaycap_relays_used_today is every login's
// relays of the day, logins on the default limit included, read over HTTP
// from one host while the mail goes through two (Badger: one host, whose
// store the second cannot open).
func TestScrapeTalliesAndDayTotal(t *testing.T) {
	srv := redistest.Start(t)
	cluster := redistest.StartCluster(t, 3)
	for _, c := range []struct {
		name, store string
	}{
		{"badger", ""},
		{"redis", fmt.Sprintf("store: {backend: redis, sync_writes: false, redis: {addrs: [%q], key_prefix: %q}}\n", srv.Addr, newPrefix())},
		{"cluster=3", fmt.Sprintf("store: {backend: redis, sync_writes: false, redis: {addrs: [%s], key_prefix: %q}}\n", quoteAll(cluster.Addrs()), newPrefix())},
	} {
		t.Run(c.name, func(t *testing.T) {
			body := metricsOn + c.store + "quota: {default_daily_limit: 10, accounts: {alice: 5, sus: {daily_limit: 7, status: suspended}}}\n"
			td := startDaemon(t, body)
			other := td
			if c.store != "" {
				other = startDaemon(t, body)
			}
			ctx := context.Background()
			a := td.adminClient(t)
			for name, limit := range map[string]int64{"carol": 100, "dave": 20} {
				if _, err := a.PutAccount(ctx, name, admin.AccountRequest{DailyLimit: &limit}); err != nil {
					t.Fatal(err)
				}
			}
			// The admin API refuses a name the file manages; a record from
			// before the file named it is still in the store.
			storeAccount(t, td, "alice", 1000)
			if _, err := a.Purchase(ctx, "carol", admin.PurchaseRequest{Relays: 5, PurchaseID: "top-1", TodayOnly: true}); err != nil {
				t.Fatal(err)
			}
			if _, err := a.PutAccount(ctx, "dave", admin.AccountRequest{Status: "suspended", Reason: "test"}); err != nil {
				t.Fatal(err)
			}
			sendN(t, td, "alice", 2)
			sendN(t, other, "carol", 3)
			sendN(t, other, "stranger", 4) // on default_daily_limit: no account to list

			f := td.scrape(t)
			want(t, f, 1, "relaycap_accounts", "status", "active", "source", "file")     // alice (over the store's alice)
			want(t, f, 1, "relaycap_accounts", "status", "suspended", "source", "file")  // sus
			want(t, f, 1, "relaycap_accounts", "status", "active", "source", "store")    // carol
			want(t, f, 1, "relaycap_accounts", "status", "suspended", "source", "store") // dave
			want(t, f, 0, "relaycap_accounts", "status", "terminated", "source", "store")
			want(t, f, 5+100+5, "relaycap_relays_sold_today") // alice's file limit, carol's and her top-up
			want(t, f, 2+3+4, "relaycap_relays_used_today")

			st, err := a.Status(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if st.RelaysUsed != 9 || st.RelaysSold != 110 || fmt.Sprint(st.Accounts) != "[{active 2} {suspended 2} {terminated 0}]" {
				t.Errorf("status: used %d, sold %d, accounts %v; want 9, 110, 2 active and 2 suspended", st.RelaysUsed, st.RelaysSold, st.Accounts)
			}
		})
	}
}

// sendN sends one message of n recipients from login, all accepted.
func sendN(t *testing.T, td *testDaemon, login string, n int) {
	t.Helper()
	s := td.milterSession(t)
	defer s.s.Close()
	s.mail(login)
	if accepted, refused := s.rcpts(n); accepted != n {
		t.Fatalf("%s: %d of %d recipients accepted, refused %v", login, accepted, n, refused)
	}
	if _, act := s.data(plainHeaders); act.Type != gomilter.ActionAccept {
		t.Fatalf("%s: end of message %v", login, act)
	}
}

// storeAccount writes an active record of name through the store's
// Accounts API, past the admin API's checks.
func storeAccount(t testing.TB, td *testDaemon, name string, limit int64) {
	t.Helper()
	now := td.clock.now()
	_, err := td.acctStore.UpdateAccount(context.Background(), name, func(quota.AccountRecord, bool) (quota.AccountRecord, quota.AuditEntry, error) {
		return quota.AccountRecord{Name: name, DailyLimit: limit, Status: quota.StatusActive, Created: now, Updated: now},
			quota.AuditEntry{Time: now, Account: name, Actor: "test", Action: quota.ActionCreate}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestScrapeRecountsAfterChanges: two hosts on one Redis. The account
// count a scrape serves is recounted at once after a change through the
// same host or a reload, and within tallyTTL after a change through the
// other host.
func TestScrapeRecountsAfterChanges(t *testing.T) {
	srv := redistest.Start(t)
	store := fmt.Sprintf("store: {backend: redis, sync_writes: false, redis: {addrs: [%q], key_prefix: %q}}\n", srv.Addr, newPrefix())
	td, other := startDaemon(t, metricsOn+store), startDaemon(t, metricsOn+store)
	ctx := context.Background()
	put := func(host *testDaemon, name string) {
		t.Helper()
		limit := int64(10)
		if _, err := host.adminClient(t).PutAccount(ctx, name, admin.AccountRequest{DailyLimit: &limit}); err != nil {
			t.Fatal(err)
		}
	}
	active := func(source string) float64 {
		t.Helper()
		v, ok := td.scrape(t).Value("relaycap_accounts", "status", "active", "source", source)
		if !ok {
			t.Fatal("no relaycap_accounts series")
		}
		return v
	}
	if n := active("store"); n != 0 {
		t.Fatalf("%v store accounts before any", n)
	}
	put(td, "carol")
	if n := active("store"); n != 1 {
		t.Fatalf("%v store accounts after this host created carol, want 1", n)
	}
	put(other, "dave")
	if n := active("store"); n != 1 {
		t.Fatalf("%v store accounts right after the other host created dave, want the count of 1 kept", n)
	}
	td.clock.set(td.clock.now().Add(tallyTTL))
	if n := active("store"); n != 2 {
		t.Fatalf("%v store accounts %v after the other host created dave, want 2", n, tallyTTL)
	}
	td.reload(t, metricsOn+store+"quota: {accounts: {erin: 5}}\n")
	if n := active("file"); n != 1 {
		t.Fatalf("%v file accounts after a reload added erin, want 1", n)
	}
}
