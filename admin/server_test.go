package admin

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaycap/relaycap/quota"
)

func TestAccountLifecycle(t *testing.T) {
	a := startAPI(t, nil)
	note := "plan S"
	limit := int64(10)
	acct, err := a.PutAccount(ctx, "Alice@Example.com", AccountRequest{DailyLimit: &limit, Note: &note})
	if err != nil {
		t.Fatal(err)
	}
	if acct.Name != "alice@example.com" || acct.DailyLimit != 10 || acct.Status != "active" || acct.Note != note || acct.Source != "store" {
		t.Fatalf("created %+v", acct)
	}
	if _, err := a.SetStatus(ctx, "alice@example.com", "suspend", "chargeback"); err != nil {
		t.Fatal(err)
	}
	if u, _ := a.Usage(ctx, "alice@example.com"); u.Status != "suspended" || u.Remaining != 0 {
		t.Fatalf("usage while suspended: %+v", u)
	}
	if _, err := a.SetStatus(ctx, "alice@example.com", "resume", "paid"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.SetStatus(ctx, "alice@example.com", "terminate", "spam run"); err != nil {
		t.Fatal(err)
	}
	_, err = a.SetStatus(ctx, "alice@example.com", "resume", "oops")
	wantAPIError(t, "resume after terminate", err, http.StatusConflict, CodeTerminated)
	_, err = a.PutAccount(ctx, "alice@example.com", AccountRequest{DailyLimit: &limit})
	wantAPIError(t, "update after terminate", err, http.StatusConflict, CodeTerminated)

	d, err := a.ShowAccount(ctx, "alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range d.Audit {
		actions = append(actions, e.Action+":"+e.Reason)
	}
	if got := strings.Join(actions, " "); got != "terminate:spam run resume:paid suspend:chargeback create:" {
		t.Fatalf("audit of show: %s", got)
	}
	me := fmt.Sprintf("uid=%d", os.Getuid())
	if d.Audit[0].Actor != me || d.Audit[0].Before.Status != "active" || d.Audit[0].After.Status != "terminated" {
		t.Fatalf("last audit entry %+v (before %+v after %+v), want actor %s active → terminated", d.Audit[0], d.Audit[0].Before, d.Audit[0].After, me)
	}
	if !strings.Contains(a.logs.String(), `msg=audit component=admin account=alice@example.com actor="`+me+`" action=terminate before="daily_limit=10 status=active note=\"plan S\"" after="daily_limit=10 status=terminated note=\"plan S\"" reason="spam run"`) {
		t.Fatalf("no audit log line for the termination:\n%s", a.logs.String())
	}
	if !strings.Contains(a.logs.String(), fmt.Sprintf("msg=\"admin request\" component=admin method=POST path=/v1/accounts/alice@example.com/terminate status=200 actor=%q uid=%d gid=%d pid=%d", me, os.Getuid(), os.Getgid(), os.Getpid())) {
		t.Fatalf("the request line lacks the peer's credentials:\n%s", a.logs.String())
	}

	if del, err := a.DeleteAccount(ctx, "alice@example.com"); err != nil || !del.Deleted {
		t.Fatalf("delete terminated: %+v, %v", del, err)
	}
	_, err = a.ShowAccount(ctx, "alice@example.com")
	wantAPIError(t, "show after delete", err, http.StatusNotFound, CodeNotFound)
	_, err = a.DeleteAccount(ctx, "alice@example.com")
	wantAPIError(t, "delete twice", err, http.StatusNotFound, CodeNotFound)
	_, err = a.SetStatus(ctx, "nobody", "suspend", "x")
	wantAPIError(t, "suspend a missing account", err, http.StatusNotFound, CodeNotFound)
	if au, err := a.Audit(ctx, "alice@example.com", 1); err != nil || len(au.Entries) != 1 || au.Entries[0].Action != "delete" {
		t.Fatalf("audit after delete: %+v, %v", au, err)
	}
}

// TestHourlyLimitAndDryRun: a store-managed account gets its own hourly
// limit and dry run through the socket, the engine decides with them, and
// an update that leaves them out keeps them.
func TestHourlyLimitAndDryRun(t *testing.T) {
	a := startAPI(t, nil)
	status, body := a.raw(t, "PUT", "/v1/accounts/alice", `{"daily_limit": 10, "hourly_limit": 2, "dry_run": true}`)
	if status != 200 || !strings.Contains(body, `"daily_limit":10,"hourly_limit":2,"dry_run":true`) {
		t.Fatalf("create: %d %s", status, body)
	}
	acct, err := a.engine.Lookup(ctx, "alice", quota.DayOf(a.clock.now(), newYork))
	if err != nil || acct.Source != quota.FromStore || acct.HourlyLimit != 2 || !acct.DryRun {
		t.Fatalf("the engine's account: %+v, %v; want the store's hourly limit 2 and dry run", acct, err)
	}
	d, err := a.engine.Check(ctx, "alice", a.clock.now())
	if err != nil || d.Hour.Limit != 2 || !d.DryRun {
		t.Fatalf("check: %+v, %v; want hour limit 2 in dry run", d, err)
	}
	limit := int64(20)
	if got, err := a.PutAccount(ctx, "alice", AccountRequest{DailyLimit: &limit}); err != nil || got.DailyLimit != 20 || got.HourlyLimit != 2 || !got.DryRun {
		t.Fatalf("update of the daily limit alone: %+v, %v; want hourly 2 and dry run kept", got, err)
	}
	if got, err := a.PutAccount(ctx, "alice", AccountRequest{HourlyLimit: ptr(int64(0)), DryRun: ptr(false)}); err != nil || got.HourlyLimit != 0 || got.DryRun {
		t.Fatalf("clearing: %+v, %v", got, err)
	}
	dd, err := a.ShowAccount(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if b, af := dd.Audit[0].Before, dd.Audit[0].After; b.HourlyLimit != 2 || !b.DryRun || af.HourlyLimit != 0 || af.DryRun {
		t.Fatalf("last audit entry: before %+v after %+v", b, af)
	}
	if !strings.Contains(a.logs.String(), `action=create before=none after="daily_limit=10 status=active hourly_limit=2 dry_run=true"`) {
		t.Fatalf("no audit log line with the hourly limit and dry run:\n%s", a.logs.String())
	}
}

func TestListPagesAndFilters(t *testing.T) {
	a := startAPI(t, map[string]quota.Account{"carol": {DailyLimit: 7, Status: quota.StatusSuspended}, "bob": {DailyLimit: 1}})
	for _, n := range []string{"alice", "dave", "erin"} {
		a.create(t, n, 5)
	}
	// A store record under a file account's name (left from before the
	// file named it) is hidden by the file's.
	if _, err := a.store.UpdateAccount(ctx, "bob", quota.Change{DailyLimit: ptr(int64(9))}.Apply("bob")); err != nil {
		t.Fatal(err)
	}
	if _, err := a.SetStatus(ctx, "dave", "suspend", "test"); err != nil {
		t.Fatal(err)
	}
	if got := listPages(t, a, "", 2); got != "alice/store bob/file carol/file dave/store erin/store" {
		t.Fatalf("pages of 2: %s", got)
	}
	page, err := a.ListAccounts(ctx, "suspended", "", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Accounts) != 2 || page.Accounts[0].Name != "carol" || page.Accounts[1].Name != "dave" || page.Next != "" {
		t.Fatalf("suspended: %+v", page)
	}
	_, err = a.ListAccounts(ctx, "sleeping", "", 10)
	wantAPIError(t, "unknown status", err, http.StatusBadRequest, CodeBadRequest)
}

// listPages follows the account list's pages of size (at most 10 of them)
// and returns "name/source" of every account listed, in order.
func listPages(t *testing.T, a *testAPI, status string, size int) string {
	t.Helper()
	var seen []string
	after := ""
	for range 10 {
		page, err := a.ListAccounts(ctx, status, after, size)
		if err != nil {
			t.Fatal(err)
		}
		for _, acct := range page.Accounts {
			seen = append(seen, acct.Name+"/"+acct.Source)
		}
		if page.Next == "" {
			break
		}
		after = page.Next
	}
	return strings.Join(seen, " ")
}

// TestListSkipsShadowedRecordsWithoutEndingThePage: store records hidden by
// the file's accounts of the same names must not end a filtered page early:
// the stored accounts behind them are still listed.
func TestListSkipsShadowedRecordsWithoutEndingThePage(t *testing.T) {
	a := startAPI(t, map[string]quota.Account{"alice": {DailyLimit: 1}, "bob": {DailyLimit: 1}})
	for _, n := range []string{"alice", "bob", "carol"} {
		// alice and bob are left from before the file named them.
		ch := quota.Change{DailyLimit: ptr(int64(5)), Status: quota.StatusSuspended}
		if _, err := a.store.UpdateAccount(ctx, n, ch.Apply(n)); err != nil {
			t.Fatal(err)
		}
	}
	if got := listPages(t, a, "suspended", 1); got != "carol/store" {
		t.Fatalf("suspended accounts in pages of 1: %q, want carol/store", got)
	}
}

func TestPurchaseRaisesTheLimitAtOnce(t *testing.T) {
	a := startAPI(t, nil)
	a.create(t, "alice", 2)
	a.commit(t, "alice", 2)
	if d, _ := a.engine.Check(context.Background(), "alice", a.clock.now()); d.Verdict != quota.OverQuota {
		t.Fatalf("at the limit: %v", d.Verdict)
	}
	p, err := a.Purchase(ctx, "alice", PurchaseRequest{Relays: 3, PurchaseID: "order-17"})
	if err != nil {
		t.Fatal(err)
	}
	if p.DailyLimit != 5 || p.DayLimit != 5 || p.Replay || p.Day != "2026-11-27" || p.Actor != fmt.Sprintf("uid=%d", os.Getuid()) {
		t.Fatalf("purchase: %+v", p)
	}
	u, err := a.Usage(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if u.Used != 2 || u.Limit != 5 || u.Remaining != 3 || u.ResetsAt != "2026-11-28T00:00:00-05:00" || u.Day != "2026-11-27" {
		t.Fatalf("usage after purchase: %+v", u)
	}
	d, err := a.ShowAccount(ctx, "alice")
	if err != nil || len(d.Purchases) != 1 || d.Purchases[0].PurchaseID != "order-17" || d.Account.DailyLimit != 5 {
		t.Fatalf("show: %+v, %v", d, err)
	}
}

// TestPurchaseReplayedCountsOnce: a billing system that retries three times
// adds the relays once; the same id for another amount is a conflict.
func TestPurchaseReplayedCountsOnce(t *testing.T) {
	a := startAPI(t, nil)
	a.create(t, "alice", 10)
	first, err := a.Purchase(ctx, "alice", PurchaseRequest{Relays: 5, PurchaseID: "inv-1"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		a.clock.set(a.clock.now().Add(time.Minute))
		p, err := a.Purchase(ctx, "alice", PurchaseRequest{Relays: 5, PurchaseID: "inv-1"})
		if err != nil || !p.Replay || p.DailyLimit != 15 || !p.Time.Equal(first.Time) {
			t.Fatalf("replay %d: %+v, %v", i, p, err)
		}
	}
	_, err = a.Purchase(ctx, "alice", PurchaseRequest{Relays: 6, PurchaseID: "inv-1"})
	wantAPIError(t, "same id, other amount", err, http.StatusConflict, CodePurchaseConflict)
	if u, _ := a.Usage(ctx, "alice"); u.Limit != 15 {
		t.Fatalf("limit after a purchase replayed 3 times: %d, want 15", u.Limit)
	}
	if n := strings.Count(a.logs.String(), "action=purchase"); n != 1 {
		t.Fatalf("%d audit lines for one purchase", n)
	}
}

func TestFiftyConcurrentPurchases(t *testing.T) {
	a := startAPI(t, nil)
	a.create(t, "alice", 1)
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	var sum int64 = 1
	for i := range 50 {
		sum += int64(i + 1)
		wg.Go(func() {
			if _, err := a.Purchase(ctx, "alice", PurchaseRequest{Relays: int64(i + 1), PurchaseID: fmt.Sprintf("p-%d", i)}); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if u, _ := a.Usage(ctx, "alice"); u.Limit != sum {
		t.Fatalf("limit after 50 concurrent purchases: %d, want %d", u.Limit, sum)
	}
}

func TestTopUpEndsAtMidnight(t *testing.T) {
	a := startAPI(t, nil)
	a.create(t, "alice", 2)
	a.commit(t, "alice", 2)
	p, err := a.Purchase(ctx, "alice", PurchaseRequest{Relays: 4, PurchaseID: "t-1", TodayOnly: true})
	if err != nil || p.DailyLimit != 2 || p.DayLimit != 6 || !p.TodayOnly {
		t.Fatalf("top-up: %+v, %v", p, err)
	}
	a.commit(t, "alice", 4)
	if u, _ := a.Usage(ctx, "alice"); u.Used != 6 || u.Limit != 6 || u.Remaining != 0 {
		t.Fatalf("after using the top-up: %+v", u)
	}
	a.clock.set(time.Date(2026, 11, 28, 0, 0, 0, 0, newYork))
	if u, _ := a.Usage(ctx, "alice"); u.Used != 0 || u.Limit != 2 || u.Day != "2026-11-28" {
		t.Fatalf("the next day: %+v, want limit 2 again", u)
	}
}

// TestTopUpEndsAtMidnightOnDSTDays: on the 25-hour day (New York falls
// back on 2026-11-01) and on the 23-hour day (it springs forward on
// 2026-03-08) a today-only top-up lasts to the local midnight that ends
// the day, and resets_at says that midnight with the offset it has.
func TestTopUpEndsAtMidnightOnDSTDays(t *testing.T) {
	for _, c := range []struct {
		name        string
		bought      time.Time // late on the DST day
		resetsAt    string
		lastInstant time.Time // the day's last second
		nextDay     quota.Day
	}{
		{"fall back", time.Date(2026, 11, 1, 23, 0, 0, 0, newYork), "2026-11-02T00:00:00-05:00",
			time.Date(2026, 11, 1, 23, 59, 59, 0, newYork), "2026-11-02"},
		{"spring forward", time.Date(2026, 3, 8, 23, 0, 0, 0, newYork), "2026-03-09T00:00:00-04:00",
			time.Date(2026, 3, 8, 23, 59, 59, 0, newYork), "2026-03-09"},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := startAPI(t, nil)
			a.clock.set(c.bought)
			a.create(t, "alice", 2)
			if _, err := a.Purchase(ctx, "alice", PurchaseRequest{Relays: 3, PurchaseID: "dst", TodayOnly: true}); err != nil {
				t.Fatal(err)
			}
			a.clock.set(c.lastInstant)
			u, err := a.Usage(ctx, "alice")
			if err != nil || u.Limit != 5 || u.ResetsAt != c.resetsAt {
				t.Fatalf("the DST day's last second: %+v, %v; want limit 5, resets at %s", u, err, c.resetsAt)
			}
			reset, err := time.Parse(time.RFC3339, u.ResetsAt)
			if err != nil {
				t.Fatal(err)
			}
			a.clock.set(reset)
			u, err = a.Usage(ctx, "alice")
			if err != nil || u.Limit != 2 || u.Day != string(c.nextDay) {
				t.Fatalf("at resets_at: %+v, %v; want limit 2 on %s", u, err, c.nextDay)
			}
			if d, err := a.engine.Check(context.Background(), "alice", reset); err != nil || d.Limit != 2 {
				t.Fatalf("the engine at resets_at: limit %d, %v; want 2", d.Limit, err)
			}
		})
	}
}

func TestFileManagedAccountsAreReadOnly(t *testing.T) {
	a := startAPI(t, map[string]quota.Account{"bob": {DailyLimit: 50}})
	limit := int64(5)
	for what, call := range map[string]func() error{
		"put": func() error { _, err := a.PutAccount(ctx, "BOB", AccountRequest{DailyLimit: &limit}); return err },
		"purchase": func() error {
			_, err := a.Purchase(ctx, "bob", PurchaseRequest{Relays: 1, PurchaseID: "x"})
			return err
		},
		"suspend":   func() error { _, err := a.SetStatus(ctx, "bob", "suspend", "x"); return err },
		"terminate": func() error { _, err := a.SetStatus(ctx, "bob", "terminate", "x"); return err },
		"delete":    func() error { _, err := a.DeleteAccount(ctx, "bob"); return err },
	} {
		ae := wantAPIError(t, what, call(), http.StatusConflict, CodeFileManaged)
		if !strings.Contains(ae.Message, "/etc/relaycap/relaycap.yaml") {
			t.Errorf("%s: %q does not name the config file", what, ae.Message)
		}
	}
	d, err := a.ShowAccount(ctx, "bob")
	if err != nil || d.Account.Source != "file" || d.Account.DailyLimit != 50 || d.Usage.Limit != 50 {
		t.Fatalf("show of a file account: %+v, %v", d, err)
	}
	if _, ok, err := a.store.Account(ctx, "bob"); err != nil || ok {
		t.Fatalf("a refused change wrote a store record (or the read failed: %v)", err)
	}
}

// TestBadRequestsChangeNothing: bodies over 64 KiB, unknown fields, bad
// values and unknown routes get a JSON error and leave the account as it
// was.
func TestBadRequestsChangeNothing(t *testing.T) {
	a := startAPI(t, nil)
	a.create(t, "alice", 10)
	big := `{"relays": 1, "purchase_id": "` + strings.Repeat("x", MaxBody) + `"}`
	for _, c := range []struct {
		method, path, body string
		status             int
		code, text         string
	}{
		{"POST", "/v1/accounts/alice/purchases", big, 400, CodeBadRequest, "over 65536 bytes"},
		{"POST", "/v1/accounts/alice/purchases", `{"relays": 5, "purchase_id": "a", "bonus": 1}`, 400, CodeBadRequest, `unknown field \"bonus\"`},
		{"POST", "/v1/accounts/alice/purchases", `{"relays": 5, "purchase_id": "a"} {}`, 400, CodeBadRequest, "more than one JSON value"},
		// encoding/json matches names regardless of case; the API's names are exact.
		{"POST", "/v1/accounts/alice/purchases", `{"Relays": 5, "purchase_id": "a"}`, 400, CodeBadRequest, `unknown field \"Relays\"`},
		{"POST", "/v1/accounts/alice/purchases", `{"relays": 5, "purchase_id": "a", "TODAY_ONLY": true}`, 400, CodeBadRequest, `unknown field \"TODAY_ONLY\"`},
		{"PUT", "/v1/accounts/alice", `{"Status": "suspended", "reason": "x"}`, 400, CodeBadRequest, `unknown field \"Status\"`},
		{"POST", "/v1/accounts/alice/purchases", `{"relays": -5, "purchase_id": "a"}`, 400, CodeBadRequest, "positive"},
		{"POST", "/v1/accounts/alice/purchases", `{"relays": 5}`, 400, CodeBadRequest, "purchase_id"},
		{"POST", "/v1/accounts/alice/purchases", ``, 400, CodeBadRequest, "empty"},
		{"POST", "/v1/accounts/alice/purchases", `{"relays": "5", "purchase_id": "a"}`, 400, CodeBadRequest, "relays"},
		{"PUT", "/v1/accounts/alice", `{"daily_limit": -1}`, 400, CodeBadRequest, "negative"},
		{"PUT", "/v1/accounts/alice", `{"hourly_limit": -1}`, 400, CodeBadRequest, "hourly_limit must not be negative"},
		{"PUT", "/v1/accounts/alice", `{"hourly_limit": 1000000000001}`, 400, CodeBadRequest, "at most"},
		{"PUT", "/v1/accounts/alice", `{"dry_run": "yes"}`, 400, CodeBadRequest, "dry_run"},
		{"PUT", "/v1/accounts/alice", `{"status": "paused"}`, 400, CodeBadRequest, "unknown account status"},
		{"PUT", "/v1/accounts/newbie", `{"note": "no limit"}`, 400, CodeBadRequest, "daily limit"},
		// A limit past int64 would wrap negative and take away what was paid for.
		{"POST", "/v1/accounts/alice/purchases", `{"relays": 9223372036854775807, "purchase_id": "huge"}`, 400, CodeBadRequest, "at most"},
		{"POST", "/v1/accounts/alice/purchases", `{"relays": 9223372036854775807, "purchase_id": "huge-today", "today_only": true}`, 400, CodeBadRequest, "at most"},
		{"POST", "/v1/accounts/alice/purchases", `{"relays": 99999999999999999999, "purchase_id": "a"}`, 400, CodeBadRequest, "relays"},
		{"PUT", "/v1/accounts/alice", `{"daily_limit": 9223372036854775807}`, 400, CodeBadRequest, "at most"},
		{"POST", "/v1/accounts/alice/purchases", `{"relays": 999999999991, "purchase_id": "just-over"}`, 400, CodeBadRequest, "at most"},
		{"POST", "/v1/accounts/alice/purchases", `{"relays": 0, "purchase_id": "a"}`, 400, CodeBadRequest, "positive"},
		{"POST", "/v1/accounts/alice/purchases", `{"relays": 5, "purchase_id": ""}`, 400, CodeBadRequest, "purchase_id"},
		{"PUT", "/v1/accounts/al%00ice", `{"daily_limit": 5}`, 400, CodeBadRequest, "control character"},
		{"PUT", "/v1/accounts/%20", `{"daily_limit": 5}`, 400, CodeBadRequest, "account name"},
		{"POST", "/v1/accounts/alice/suspend", `{"reason": 7}`, 400, CodeBadRequest, "reason"},
		{"PUT", "/v1/accounts/alice", `{"status": "SUSPENDED "}`, 400, CodeBadRequest, "unknown account status"},
		// Suspend, resume and terminate each need a reason, also through PUT.
		{"PUT", "/v1/accounts/alice", `{"status": "terminated"}`, 400, CodeBadRequest, "reason"},
		{"PUT", "/v1/accounts/alice", `{"status": "suspended", "daily_limit": 3}`, 400, CodeBadRequest, "reason"},
		{"PUT", "/v1/accounts/newbie", `{"daily_limit": 3, "status": "suspended"}`, 400, CodeBadRequest, "reason"},
		{"GET", "/v1/accounts?limit=0", ``, 400, CodeBadRequest, "limit"},
		{"GET", "/v1/accounts?limit=1001", ``, 400, CodeBadRequest, "limit"},
		{"GET", "/v1/accounts?limit=ten", ``, 400, CodeBadRequest, "limit"},
		{"GET", "/v1/accounts?status=gone", ``, 400, CodeBadRequest, "status"},
		{"GET", "/v1/accounts/alice?audit=-1", ``, 400, CodeBadRequest, "audit"},
		{"GET", "/v1/accounts/alice/audit?limit=0", ``, 400, CodeBadRequest, "limit"},
		{"GET", "/v1/usage/top?n=0", ``, 400, CodeBadRequest, "n="},
		{"GET", "/v1/usage/top?day=yesterday", ``, 400, CodeBadRequest, "day"},
		{"GET", "/v1/accounts/alice/history?from=2026-11-27&to=2026-11-01", ``, 400, CodeBadRequest, "after"},
		{"POST", "/v1/accounts/alice/suspend", `{}`, 400, CodeBadRequest, "reason is required"},
		{"POST", "/v1/accounts/alice/suspend", `{"reason": "x", "until": "never"}`, 400, CodeBadRequest, "unknown field"},
		{"GET", "/v1/accounts/alice/history?days=0", ``, 400, CodeBadRequest, "days"},
		{"GET", "/v1/accounts/alice/history?from=2026-13-01", ``, 400, CodeBadRequest, "from"},
		{"GET", "/v1/nothing", ``, 404, CodeNotFound, "no such route"},
		{"PATCH", "/v1/accounts/alice", `{}`, 405, CodeMethod, "GET, PUT, DELETE"},
	} {
		status, body := a.raw(t, c.method, c.path, c.body)
		want := fmt.Sprintf(`"code":%q`, c.code)
		if status != c.status || !strings.Contains(body, want) || !strings.Contains(body, c.text) {
			t.Errorf("%s %s %.60q: %d %.200s; want %d with %s and %q", c.method, c.path, c.body, status, body, c.status, want, c.text)
		}
	}
	d, err := a.ShowAccount(ctx, "alice")
	if err != nil || d.Account.DailyLimit != 10 || d.Account.Status != "active" || len(d.Purchases) != 0 || len(d.Audit) != 1 {
		t.Fatalf("after bad requests: %+v, %v", d, err)
	}
	for _, name := range []string{"newbie", "al\x00ice", " "} {
		if _, ok, err := a.store.Account(ctx, name); err != nil || ok {
			t.Fatalf("a refused creation of %q wrote a record (or the read failed: %v)", name, err)
		}
	}
}

func TestHistoryAndTop(t *testing.T) {
	a := startAPI(t, nil)
	for name, n := range map[string]int{"alice": 3, "bob": 7, "carol": 1} {
		a.create(t, name, 100)
		a.commit(t, name, n)
	}
	a.clock.set(time.Date(2026, 11, 28, 9, 0, 0, 0, newYork))
	a.commit(t, "alice", 2)
	h, err := a.History(ctx, "alice", 7)
	if err != nil {
		t.Fatal(err)
	}
	if h.From != "2026-11-22" || h.To != "2026-11-28" || fmt.Sprint(h.Days) != "[{2026-11-27 3} {2026-11-28 2}]" {
		t.Fatalf("history: %+v", h)
	}
	top, err := a.Top(ctx, 2)
	if err != nil || top.Day != "2026-11-28" || fmt.Sprint(top.Accounts) != "[{alice 2}]" {
		t.Fatalf("top today: %+v, %v", top, err)
	}
	status, body := a.raw(t, "GET", "/v1/usage/top?n=2&day=2026-11-27", "")
	if status != 200 || !strings.Contains(body, `"accounts":[{"account":"bob","used":7},{"account":"alice","used":3}]`) {
		t.Fatalf("top of yesterday: %d %s", status, body)
	}
}

// TestTokenListener: the TCP listener answers only with the bearer token,
// compared in constant time, and logs each refusal.
func TestTokenListener(t *testing.T) {
	a := startAPI(t, nil)
	a.create(t, "alice", 10)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	token := "0123456789abcdef0123456789abcdef"
	go a.srv.ServeToken(ln, []byte(token))
	addr := "inet:" + ln.Addr().String()
	for _, bad := range []string{"", "0123456789abcdef", token + "x"} {
		c, err := NewClient(addr, bad)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Purchase(ctx, "alice", PurchaseRequest{Relays: 5, PurchaseID: "tcp-1"})
		wantAPIError(t, fmt.Sprintf("token %q", bad), err, http.StatusUnauthorized, CodeUnauthorized)
	}
	if n := strings.Count(a.logs.String(), "missing or wrong bearer token\" component=admin remote=127.0.0.1:"); n != 3 {
		t.Fatalf("%d refusal log lines, want 3:\n%s", n, a.logs.String())
	}
	if u, _ := a.Usage(ctx, "alice"); u.Limit != 10 {
		t.Fatalf("a refused purchase changed the limit to %d", u.Limit)
	}
	c, err := NewClient(addr, token)
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.Purchase(ctx, "alice", PurchaseRequest{Relays: 5, PurchaseID: "tcp-1"})
	if err != nil || p.Actor != "token" || p.DailyLimit != 15 {
		t.Fatalf("with the token: %+v, %v", p, err)
	}
}

func TestClientSaysTheDaemonIsNotRunning(t *testing.T) {
	c, err := NewClient("unix:"+t.TempDir()+"/admin.sock", "")
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Usage(ctx, "alice")
	if err == nil || !strings.HasPrefix(err.Error(), "relaycap is not running (nothing answers on unix:") || strings.Count(err.Error(), "dial") > 0 {
		t.Fatalf("no daemon: %v", err)
	}
}

func ptr[T any](v T) *T { return &v }

func TestClientTellsAStaleSocketFromAForbiddenOne(t *testing.T) {
	dir := t.TempDir()
	sock := dir + "/admin.sock"
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close() // a crashed daemon leaves its socket file behind
	c, err := NewClient("unix:"+sock, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Usage(ctx, "alice"); err == nil || !strings.Contains(err.Error(), "relaycap is not running (nothing answers on unix:"+sock+": connect: connection refused)") {
		t.Fatalf("stale socket: %v", err)
	}
}
