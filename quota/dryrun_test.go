package quota

import (
	"testing"
	"time"
)

// TestDryRunCountsPastTheLimit: in dry run a relay over the limit is
// allowed, reserved and committed, and says what enforcing would have
// done; sanctions and an unprovisioned login are still refused.
func TestDryRunCountsPastTheLimit(t *testing.T) {
	e, _ := newEngine(t, map[string]Account{
		"alice": {DailyLimit: 2},
		"sam":   {DailyLimit: 5, Status: StatusSuspended},
		"tom":   {DailyLimit: 5, Status: StatusTerminated},
	})
	setSettings(t, e, Settings{HoldTTL: time.Hour, Location: newYork, DryRun: true, Accounts: table(map[string]Account{
		"alice": {DailyLimit: 2},
		"sam":   {DailyLimit: 5, Status: StatusSuspended},
		"tom":   {DailyLimit: 5, Status: StatusTerminated},
	})})
	now := at("2026-11-27 10:00:00")
	var txn Txn
	var would []Verdict
	for range 3 {
		d, err := e.Reserve(ctx, &txn, "alice", now)
		if err != nil || !d.Allowed() || !d.DryRun {
			t.Fatalf("dry-run reserve: %+v %v", d, err)
		}
		would = append(would, d.WouldRefuse)
	}
	if would[0] != NoVerdict || would[1] != NoVerdict || would[2] != OverQuota {
		t.Fatalf("would refuse %v, want none, none, over_quota", would)
	}
	d, err := e.Commit(ctx, &txn, now)
	if err != nil || d.Used != 3 || d.OverLimit() != 1 {
		t.Fatalf("commit: used %d over %d (%v)", d.Used, d.OverLimit(), err)
	}
	if d, err := e.Check(ctx, "alice", now); err != nil || !d.Allowed() || d.WouldRefuse != OverQuota {
		t.Fatalf("check past the limit: %+v %v", d, err)
	}
	if u, err := e.Usage(ctx, "alice", now); err != nil || !u.DryRun || u.OverLimit() != 1 {
		t.Fatalf("usage: %+v %v", u, err)
	}
	for login, want := range map[string]Verdict{"sam": Suspended, "tom": Terminated, "nobody": NotProvisioned} {
		if d, err := e.Check(ctx, login, now); err != nil || d.Verdict != want {
			t.Errorf("%s in dry run: %v %v, want %v", login, d.Verdict, err, want)
		}
	}
}

// TestDryRunPerAccount: one account in dry run, the others enforced.
func TestDryRunPerAccount(t *testing.T) {
	e, _ := newEngine(t, map[string]Account{
		"alice": {DailyLimit: 1, DryRun: true},
		"bob":   {DailyLimit: 1},
	})
	now := at("2026-11-27 10:00:00")
	if n := send(t, e, "alice", 3, now); n != 3 {
		t.Fatalf("alice in dry run sent %d of 3", n)
	}
	if n := send(t, e, "bob", 3, now); n != 1 {
		t.Fatalf("bob enforced sent %d of 3, want 1", n)
	}
	if d, err := e.Check(ctx, "bob", now); err != nil || d.Verdict != OverQuota || d.DryRun {
		t.Fatalf("bob: %+v %v", d, err)
	}
}
