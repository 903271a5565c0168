package badgerstore

import (
	"context"
	"testing"

	"github.com/relaycap/relaycap/quota"
	"github.com/relaycap/relaycap/quota/storetest"
)

func TestAccountsContract(t *testing.T) {
	storetest.TestAccounts(t, func(t *testing.T) storetest.Stores {
		s := open(t, t.TempDir())
		t.Cleanup(func() { s.Close() })
		return storetest.Stores{Accounts: s, AddUsage: func(account string, day quota.Day, n int64) error {
			_, err := s.AddUsage(account, []quota.DayCount{{Day: day, N: n}})
			return err
		}}
	})
}

func TestAccountsSurviveReopen(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	ctx := context.Background()
	limit := int64(10)
	if _, err := s.UpdateAccount(ctx, "alice", quota.Change{DailyLimit: &limit}.Apply("alice")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Purchase(ctx, quota.Purchase{ID: "o1", Account: "alice", Relays: 5, Day: "2026-11-27"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir)
	defer s.Close()
	if r, ok, err := s.Account(ctx, "alice"); err != nil || !ok || r.DailyLimit != 15 {
		t.Fatalf("after reopen: %+v %v %v", r, ok, err)
	}
	if _, replay, err := s.Purchase(ctx, quota.Purchase{ID: "o1", Account: "alice", Relays: 5, Day: "2026-11-28"}); err != nil || !replay {
		t.Fatalf("replay after reopen: %v %v", replay, err)
	}
}
