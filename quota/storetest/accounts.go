// Package storetest is the contract suite every quota store passes: a
// store's own test calls these functions with a factory of fresh, empty
// stores.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/relaycap/relaycap/quota"
)

// Stores is what a factory hands the suite: a fresh, empty accounts store
// and a way to commit usage through the same store's counter (for History
// and Top).
type Stores struct {
	Accounts quota.Accounts
	// AddUsage commits n relays of account on day, durably.
	AddUsage func(account string, day quota.Day, n int64) error
}

// The suite's clock: purchases and changes carry these times.
var (
	day1 = quota.Day("2026-11-27")
	day2 = quota.Day("2026-11-28")
	t1   = time.Date(2026, 11, 27, 15, 0, 0, 0, time.UTC)
	t2   = time.Date(2026, 11, 28, 15, 0, 0, 0, time.UTC)
)

// TestAccounts runs the quota.Accounts contract against stores from open.
func TestAccounts(t *testing.T, open func(t *testing.T) Stores) {
	cases := []struct {
		name string
		run  func(*testing.T, Stores)
	}{
		{"CreateShowList", testCreateShowList},
		{"UpdateKeepsUnsetFields", testUpdateKeepsUnsetFields},
		{"HourlyLimitAndDryRun", testHourlyLimitAndDryRun},
		{"FailedChangeWritesNothing", testFailedChangeWritesNothing},
		{"TerminatedIsFinal", testTerminatedIsFinal},
		{"PurchaseRaisesLimit", testPurchaseRaisesLimit},
		{"PurchaseReplayCountsOnce", testPurchaseReplayCountsOnce},
		{"PurchaseIDConflict", testPurchaseIDConflict},
		{"PurchasePastMaxLimitWritesNothing", testPurchasePastMaxLimit},
		{"ConcurrentPurchasesAddUp", testConcurrentPurchases},
		{"TopUpIsForItsDayOnly", testTopUp},
		{"AuditTrail", testAuditTrail},
		{"DeleteKeepsHistory", testDeleteKeepsHistory},
		{"HistoryAndTop", testHistoryAndTop},
		{"UsedOnSumsEveryCommit", testUsedOn},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.run(t, open(t)) })
	}
}

var ctx = context.Background()

func create(t *testing.T, a quota.Accounts, name string, limit int64) quota.AccountRecord {
	t.Helper()
	r, err := a.UpdateAccount(ctx, name, quota.Change{DailyLimit: &limit, Actor: "test", Time: t1, Day: day1}.Apply(name))
	if err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	return r
}

func get(t *testing.T, a quota.Accounts, name string) quota.AccountRecord {
	t.Helper()
	r, ok, err := a.Account(ctx, name)
	if err != nil || !ok {
		t.Fatalf("account %s: found %v, %v", name, ok, err)
	}
	return r
}

func setStatus(a quota.Accounts, name string, s quota.Status, at time.Time) error {
	_, err := a.UpdateAccount(ctx, name, quota.Change{Status: s, Reason: "because " + string(s), Actor: "test", Time: at, Day: day1}.Apply(name))
	return err
}

func purchase(id, account string, relays int64, todayOnly bool, day quota.Day, at time.Time) quota.Purchase {
	return quota.Purchase{ID: id, Account: account, Relays: relays, TodayOnly: todayOnly, Day: day, Time: at, Actor: "billing"}
}

func testCreateShowList(t *testing.T, s Stores) {
	a := s.Accounts
	if _, ok, err := a.Account(ctx, "nobody"); ok || err != nil {
		t.Fatalf("missing account: found %v, %v", ok, err)
	}
	note := "gold plan"
	r, err := a.UpdateAccount(ctx, "alice", quota.Change{DailyLimit: ptr(int64(10)), Note: &note, Time: t1, Day: day1}.Apply("alice"))
	if err != nil {
		t.Fatal(err)
	}
	want := quota.AccountRecord{Name: "alice", DailyLimit: 10, Status: quota.StatusActive, Note: note, Created: t1, Updated: t1}
	if !equalRecords(r, want) || !equalRecords(get(t, a, "alice"), want) {
		t.Fatalf("created %+v, stored %+v; want %+v", r, get(t, a, "alice"), want)
	}
	for _, n := range []string{"dave", "bob", "carol", "erin"} {
		create(t, a, n, 5)
	}
	if err := setStatus(a, "carol", quota.StatusSuspended, t1); err != nil {
		t.Fatal(err)
	}
	page1, err := a.ListAccounts(ctx, quota.ListQuery{Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	page2, err := a.ListAccounts(ctx, quota.ListQuery{Limit: 10, After: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	if got := names(page1) + "|" + names(page2); got != "alice,bob|carol,dave,erin" {
		t.Errorf("pages: %s, want alice,bob|carol,dave,erin", got)
	}
	suspended, err := a.ListAccounts(ctx, quota.ListQuery{Limit: 10, Status: quota.StatusSuspended})
	if err != nil || names(suspended) != "carol" {
		t.Errorf("suspended: %s, %v; want carol", names(suspended), err)
	}
}

func testUpdateKeepsUnsetFields(t *testing.T, s Stores) {
	a := s.Accounts
	note := "n1"
	if _, err := a.UpdateAccount(ctx, "alice", quota.Change{DailyLimit: ptr(int64(10)), Note: &note, Time: t1, Day: day1}.Apply("alice")); err != nil {
		t.Fatal(err)
	}
	if err := setStatus(a, "alice", quota.StatusSuspended, t2); err != nil {
		t.Fatal(err)
	}
	if _, err := a.UpdateAccount(ctx, "alice", quota.Change{DailyLimit: ptr(int64(20)), Time: t2, Day: day2}.Apply("alice")); err != nil {
		t.Fatal(err)
	}
	got := get(t, a, "alice")
	if got.DailyLimit != 20 || got.Note != "n1" || got.Status != quota.StatusSuspended || !got.Created.Equal(t1) || !got.Updated.Equal(t2) {
		t.Fatalf("after updates: %+v", got)
	}
}

// testHourlyLimitAndDryRun: a record carries its own hourly limit and dry
// run, an update that leaves them out keeps them, and the audit shows them.
func testHourlyLimitAndDryRun(t *testing.T, s Stores) {
	a := s.Accounts
	if _, err := a.UpdateAccount(ctx, "alice", quota.Change{DailyLimit: ptr(int64(10)), HourlyLimit: ptr(int64(2)), DryRun: ptr(true),
		Time: t1, Day: day1}.Apply("alice")); err != nil {
		t.Fatal(err)
	}
	if got := get(t, a, "alice"); got.HourlyLimit != 2 || !got.DryRun || got.DailyLimit != 10 {
		t.Fatalf("created: %+v, want hourly 2, dry run", got)
	}
	if _, err := a.UpdateAccount(ctx, "alice", quota.Change{DailyLimit: ptr(int64(20)), Time: t2, Day: day2}.Apply("alice")); err != nil {
		t.Fatal(err)
	}
	if got := get(t, a, "alice"); got.HourlyLimit != 2 || !got.DryRun || got.DailyLimit != 20 {
		t.Fatalf("after a daily limit change: %+v, want hourly 2, dry run kept", got)
	}
	if _, err := a.UpdateAccount(ctx, "alice", quota.Change{HourlyLimit: ptr(int64(0)), DryRun: ptr(false), Time: t2, Day: day2}.Apply("alice")); err != nil {
		t.Fatal(err)
	}
	if got := get(t, a, "alice"); got.HourlyLimit != 0 || got.DryRun || got.DailyLimit != 20 {
		t.Fatalf("after clearing: %+v, want no hourly limit, no dry run", got)
	}
	if _, err := a.UpdateAccount(ctx, "alice", quota.Change{HourlyLimit: ptr(quota.MaxLimit + 1), Time: t2, Day: day2}.Apply("alice")); !errors.Is(err, quota.ErrLimitTooHigh) {
		t.Fatalf("hourly limit past MaxLimit: %v, want ErrLimitTooHigh", err)
	}
	entries, err := a.Audit(ctx, "alice", 10)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, fmt.Sprintf("%s %v→%v", e.Action, e.Before, e.After))
	}
	want := []string{
		`update daily_limit=20 status=active hourly_limit=2 dry_run=true→daily_limit=20 status=active`,
		`update daily_limit=10 status=active hourly_limit=2 dry_run=true→daily_limit=20 status=active hourly_limit=2 dry_run=true`,
		`create <nil>→daily_limit=10 status=active hourly_limit=2 dry_run=true`,
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("audit, newest first:\n%s\nwant\n%s", join(got), join(want))
	}
}

func testFailedChangeWritesNothing(t *testing.T, s Stores) {
	a := s.Accounts
	if _, err := a.UpdateAccount(ctx, "alice", quota.Change{Time: t1}.Apply("alice")); !errors.Is(err, quota.ErrNeedsLimit) {
		t.Fatalf("create without a limit: %v, want ErrNeedsLimit", err)
	}
	if _, ok, _ := a.Account(ctx, "alice"); ok {
		t.Fatal("a refused creation left a record")
	}
	if entries, err := a.Audit(ctx, "alice", 10); err != nil || len(entries) != 0 {
		t.Fatalf("a refused creation left audit entries: %+v, %v", entries, err)
	}
	create(t, a, "bob", 3)
	boom := errors.New("boom")
	_, err := a.UpdateAccount(ctx, "bob", func(cur quota.AccountRecord, _ bool) (quota.AccountRecord, quota.AuditEntry, error) {
		cur.DailyLimit = 99
		return cur, quota.AuditEntry{Account: "bob", Time: t2, Action: quota.ActionUpdate}, boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("change error: %v, want it returned", err)
	}
	if r := get(t, a, "bob"); r.DailyLimit != 3 {
		t.Fatalf("a failed change was written: %+v", r)
	}
	if err := a.DeleteAccount(ctx, "nobody", quota.Deletion("t", "", t1, day1)); !errors.Is(err, quota.ErrNoAccount) {
		t.Fatalf("delete of a missing account: %v, want ErrNoAccount", err)
	}
	if _, _, err := a.Purchase(ctx, purchase("p0", "nobody", 5, false, day1, t1)); !errors.Is(err, quota.ErrNoAccount) {
		t.Fatalf("purchase for a missing account: %v, want ErrNoAccount", err)
	}
}

func testTerminatedIsFinal(t *testing.T, s Stores) {
	a := s.Accounts
	create(t, a, "mallory", 100)
	if err := setStatus(a, "mallory", quota.StatusTerminated, t1); err != nil {
		t.Fatal(err)
	}
	if err := setStatus(a, "mallory", quota.StatusActive, t2); !errors.Is(err, quota.ErrTerminated) {
		t.Fatalf("resume after terminate: %v, want ErrTerminated", err)
	}
	if _, _, err := a.Purchase(ctx, purchase("p1", "mallory", 5, false, day1, t1)); !errors.Is(err, quota.ErrTerminated) {
		t.Fatalf("purchase after terminate: %v, want ErrTerminated", err)
	}
	if r := get(t, a, "mallory"); r.Status != quota.StatusTerminated || r.DailyLimit != 100 {
		t.Fatalf("terminated account changed: %+v", r)
	}
	if err := a.DeleteAccount(ctx, "mallory", quota.Deletion("t", "closed", t2, day2)); err != nil {
		t.Fatalf("delete terminated: %v", err)
	}
	if _, ok, _ := a.Account(ctx, "mallory"); ok {
		t.Fatal("deleted account still there")
	}
}

func testPurchaseRaisesLimit(t *testing.T, s Stores) {
	a := s.Accounts
	create(t, a, "alice", 10)
	p, replay, err := a.Purchase(ctx, purchase("order-1", "alice", 5, false, day1, t1))
	if err != nil || replay {
		t.Fatalf("purchase: replay %v, %v", replay, err)
	}
	if p.DailyLimit != 15 || p.DayLimit != 15 {
		t.Fatalf("purchase result %+v, want daily and day limit 15", p)
	}
	if r := get(t, a, "alice"); r.DailyLimit != 15 {
		t.Fatalf("record after purchase: %+v", r)
	}
	list, err := a.Purchases(ctx, "alice", 10)
	if err != nil || len(list) != 1 || list[0].ID != "order-1" || list[0].Relays != 5 || list[0].Actor != "billing" || !list[0].Time.Equal(t1) {
		t.Fatalf("purchases: %+v, %v", list, err)
	}
}

func testPurchaseReplayCountsOnce(t *testing.T, s Stores) {
	a := s.Accounts
	create(t, a, "alice", 10)
	first, _, err := a.Purchase(ctx, purchase("order-1", "alice", 5, false, day1, t1))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		// A retry comes later; it still answers what the first call did.
		got, replay, err := a.Purchase(ctx, purchase("order-1", "alice", 5, false, day2, t2))
		if err != nil || !replay || got.DailyLimit != first.DailyLimit || !got.Time.Equal(t1) || got.Day != day1 {
			t.Fatalf("replay %d: %+v replay=%v %v; want the first result %+v", i, got, replay, err, first)
		}
	}
	if r := get(t, a, "alice"); r.DailyLimit != 15 {
		t.Fatalf("after 3 replays the limit is %d, want 15", r.DailyLimit)
	}
	if list, _ := a.Purchases(ctx, "alice", 10); len(list) != 1 {
		t.Fatalf("replays recorded purchases: %+v", list)
	}
	if entries, _ := a.Audit(ctx, "alice", 10); len(entries) != 2 {
		t.Fatalf("audit after create, purchase and replays: %d entries, want 2", len(entries))
	}
}

func testPurchaseIDConflict(t *testing.T, s Stores) {
	a := s.Accounts
	create(t, a, "alice", 10)
	create(t, a, "bob", 10)
	if _, _, err := a.Purchase(ctx, purchase("order-1", "alice", 5, false, day1, t1)); err != nil {
		t.Fatal(err)
	}
	for _, p := range []quota.Purchase{
		purchase("order-1", "alice", 6, false, day1, t1),
		purchase("order-1", "alice", 5, true, day1, t1),
		purchase("order-1", "bob", 5, false, day1, t1),
	} {
		if _, _, err := a.Purchase(ctx, p); !errors.Is(err, quota.ErrPurchaseConflict) {
			t.Errorf("%+v: %v, want ErrPurchaseConflict", p, err)
		}
	}
	if get(t, a, "alice").DailyLimit != 15 || get(t, a, "bob").DailyLimit != 10 {
		t.Fatalf("a conflicting purchase changed a limit: alice %d, bob %d", get(t, a, "alice").DailyLimit, get(t, a, "bob").DailyLimit)
	}
}

// testPurchasePastMaxLimit: a purchase that would take the day's limit past
// quota.MaxLimit (where int64 arithmetic on limits starts to wrap) is
// refused and leaves no trace: not in the record, not as a purchase, not
// in the audit, and its id stays free for a corrected retry.
func testPurchasePastMaxLimit(t *testing.T, s Stores) {
	a := s.Accounts
	create(t, a, "alice", 10)
	for _, p := range []quota.Purchase{
		purchase("huge", "alice", quota.MaxLimit-9, false, day1, t1),
		purchase("huge", "alice", quota.MaxLimit-9, true, day1, t1),
		purchase("huge", "alice", 1<<62, false, day1, t1),
	} {
		if _, _, err := a.Purchase(ctx, p); !errors.Is(err, quota.ErrLimitTooHigh) {
			t.Fatalf("%+v: %v, want ErrLimitTooHigh", p, err)
		}
	}
	if r := get(t, a, "alice"); r.DailyLimit != 10 || r.TopUp(day1) != 0 {
		t.Fatalf("a refused purchase changed the record: %+v", r)
	}
	list, err := a.Purchases(ctx, "alice", 10)
	if err != nil || len(list) != 0 {
		t.Fatalf("refused purchases recorded: %+v, %v", list, err)
	}
	entries, err := a.Audit(ctx, "alice", 10)
	if err != nil || len(entries) != 1 {
		t.Fatalf("audit after refused purchases: %+v, %v; want the creation alone", entries, err)
	}
	p, replay, err := a.Purchase(ctx, purchase("huge", "alice", quota.MaxLimit-10, false, day1, t1))
	if err != nil || replay || p.DailyLimit != quota.MaxLimit {
		t.Fatalf("the corrected purchase up to MaxLimit: %+v replay=%v, %v", p, replay, err)
	}
}

func testConcurrentPurchases(t *testing.T, s Stores) {
	a := s.Accounts
	create(t, a, "alice", 10)
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	var want int64 = 10
	for i := range 50 {
		want += int64(i + 1)
		wg.Go(func() {
			// Each purchase is also retried once at the same time.
			for range 2 {
				if _, _, err := a.Purchase(ctx, purchase(fmt.Sprintf("order-%d", i), "alice", int64(i+1), false, day1, t1)); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if r := get(t, a, "alice"); r.DailyLimit != want {
		t.Fatalf("50 concurrent purchases (each sent twice): limit %d, want %d", r.DailyLimit, want)
	}
	if list, _ := a.Purchases(ctx, "alice", 100); len(list) != 50 {
		t.Fatalf("%d purchases recorded, want 50", len(list))
	}
}

func testTopUp(t *testing.T, s Stores) {
	a := s.Accounts
	create(t, a, "alice", 10)
	p, _, err := a.Purchase(ctx, purchase("topup-1", "alice", 7, true, day1, t1))
	if err != nil {
		t.Fatal(err)
	}
	if p.DailyLimit != 10 || p.DayLimit != 17 {
		t.Fatalf("top-up result %+v, want daily 10, day 17", p)
	}
	r := get(t, a, "alice")
	if r.DailyLimit != 10 || r.TopUp(day1) != 7 || r.TopUp(day2) != 0 {
		t.Fatalf("after a top-up of %s: daily %d, %s +%d, %s +%d", day1, r.DailyLimit, day1, r.TopUp(day1), day2, r.TopUp(day2))
	}
	if _, _, err := a.Purchase(ctx, purchase("topup-2", "alice", 3, true, day1, t1)); err != nil {
		t.Fatal(err)
	}
	if r := get(t, a, "alice"); r.TopUp(day1) != 10 {
		t.Fatalf("two top-ups of one day: +%d, want +10", r.TopUp(day1))
	}
	if _, _, err := a.Purchase(ctx, purchase("topup-3", "alice", 2, true, day2, t2)); err != nil {
		t.Fatal(err)
	}
	if r := get(t, a, "alice"); r.TopUp(day2) != 2 || len(r.TopUps) != 1 {
		t.Fatalf("the next day's top-up: %+v, want only %s +2 kept", r.TopUps, day2)
	}
}

func testAuditTrail(t *testing.T, s Stores) {
	a := s.Accounts
	create(t, a, "alice", 10)
	if _, _, err := a.Purchase(ctx, purchase("order-1", "alice", 5, false, day1, t1.Add(time.Second))); err != nil {
		t.Fatal(err)
	}
	if err := setStatus(a, "alice", quota.StatusSuspended, t1.Add(2*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := setStatus(a, "alice", quota.StatusActive, t1.Add(3*time.Second)); err != nil {
		t.Fatal(err)
	}
	create(t, a, "bob", 1)
	entries, err := a.Audit(ctx, "alice", 10)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, fmt.Sprintf("%s %s %v→%v %q %s", e.Action, e.Actor, e.Before, e.After, e.Reason, e.PurchaseID))
	}
	want := []string{
		`resume test daily_limit=15 status=suspended→daily_limit=15 status=active "because active" `,
		`suspend test daily_limit=15 status=active→daily_limit=15 status=suspended "because suspended" `,
		`purchase billing daily_limit=10 status=active→daily_limit=15 status=active "+5 relays per day" order-1`,
		`create test <nil>→daily_limit=10 status=active "" `,
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("audit, newest first:\n%s\nwant\n%s", join(got), join(want))
	}
	if last, _ := a.Audit(ctx, "alice", 1); len(last) != 1 || last[0].Action != quota.ActionResume || !last[0].Time.Equal(t1.Add(3*time.Second)) {
		t.Fatalf("last entry: %+v", last)
	}
}

func testDeleteKeepsHistory(t *testing.T, s Stores) {
	a := s.Accounts
	create(t, a, "alice", 10)
	if _, _, err := a.Purchase(ctx, purchase("order-1", "alice", 5, false, day1, t1)); err != nil {
		t.Fatal(err)
	}
	if err := s.AddUsage("alice", day1, 4); err != nil {
		t.Fatal(err)
	}
	if err := a.DeleteAccount(ctx, "alice", quota.Deletion("test", "customer left", t2, day2)); err != nil {
		t.Fatal(err)
	}
	if h, err := a.History(ctx, "alice", day1, day2); err != nil || len(h) != 1 || h[0].N != 4 {
		t.Fatalf("history after delete: %+v, %v", h, err)
	}
	if entries, _ := a.Audit(ctx, "alice", 10); len(entries) != 3 || entries[0].Action != quota.ActionDelete || entries[0].After != nil || entries[0].Reason != "customer left" {
		t.Fatalf("audit after delete: %+v", entries)
	}
	if list, _ := a.Purchases(ctx, "alice", 10); len(list) != 1 {
		t.Fatalf("purchases after delete: %+v", list)
	}
	// The purchase id is still known: a late billing retry adds nothing
	// to a re-created account.
	create(t, a, "alice", 1)
	if _, replay, err := a.Purchase(ctx, purchase("order-1", "alice", 5, false, day2, t2)); err != nil || !replay {
		t.Fatalf("replay after delete: replay %v, %v", replay, err)
	}
	if r := get(t, a, "alice"); r.DailyLimit != 1 {
		t.Fatalf("replay after delete raised the new account to %d", r.DailyLimit)
	}
}

func testHistoryAndTop(t *testing.T, s Stores) {
	a := s.Accounts
	for _, u := range []struct {
		account string
		day     quota.Day
		n       int64
	}{
		{"alice", "2026-11-25", 3}, {"alice", day1, 5}, {"alice", day2, 1},
		{"bob", day1, 9}, {"carol", day1, 5}, {"al", day1, 1}, {"dave", day2, 50},
	} {
		if err := s.AddUsage(u.account, u.day, u.n); err != nil {
			t.Fatal(err)
		}
	}
	h, err := a.History(ctx, "alice", "2026-11-26", day2)
	if err != nil || fmt.Sprint(h) != "[{2026-11-27 5} {2026-11-28 1}]" {
		t.Fatalf("history of alice 11-26..11-28: %v, %v", h, err)
	}
	top, err := a.Top(ctx, day1, 3)
	if err != nil || fmt.Sprint(top) != "[{bob 9} {alice 5} {carol 5}]" {
		t.Fatalf("top 3 of %s: %v, %v", day1, top, err)
	}
	if all, _ := a.Top(ctx, day1, 100); len(all) != 4 {
		t.Fatalf("top 100 of %s: %v, want the 4 accounts with usage", day1, all)
	}
}

// testUsedOn: the day's total adds up every account's commits, also
// concurrent ones and ones of accounts that have no record, and leaves out
// the burst brake's hour windows.
func testUsedOn(t *testing.T, s Stores) {
	for _, u := range []struct {
		account string
		day     quota.Day
		n       int64
	}{
		{"alice", day1, 5}, {"bob", day1, 9}, {"alice", day2, 4}, {"alice", quota.HourOf(t1, time.UTC), 7},
	} {
		if err := s.AddUsage(u.account, u.day, u.n); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := range 20 {
		wg.Go(func() { errs <- s.AddUsage(fmt.Sprintf("user%02d", i), day1, 1) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for day, want := range map[quota.Day]int64{day1: 5 + 9 + 20, day2: 4, "2026-11-29": 0} {
		if got, err := s.Accounts.UsedOn(ctx, day); err != nil || got != want {
			t.Errorf("UsedOn(%s) = %d, %v; want %d", day, got, err, want)
		}
	}
}

func ptr[T any](v T) *T { return &v }

func names(rs []quota.AccountRecord) string {
	out := ""
	for i, r := range rs {
		if i > 0 {
			out += ","
		}
		out += r.Name
	}
	return out
}

func join(lines []string) string {
	out := ""
	for _, l := range lines {
		out += "  " + l + "\n"
	}
	return out
}

func equalRecords(a, b quota.AccountRecord) bool {
	return a.Name == b.Name && a.DailyLimit == b.DailyLimit && a.HourlyLimit == b.HourlyLimit && a.DryRun == b.DryRun && a.Status == b.Status && a.Note == b.Note &&
		a.Created.Equal(b.Created) && a.Updated.Equal(b.Updated) && fmt.Sprint(a.TopUps) == fmt.Sprint(b.TopUps)
}
