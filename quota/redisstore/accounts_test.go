package redisstore

import (
	"context"
	"testing"
	"time"

	"github.com/relaycap/relaycap/internal/redistest"
	"github.com/relaycap/relaycap/quota"
	"github.com/relaycap/relaycap/quota/storetest"
)

func accountStores(t *testing.T, addrs []string) storetest.Stores {
	s := open(t, addrs, 0, 0)
	return storetest.Stores{Accounts: s, AddUsage: func(account string, day quota.Day, n int64) error {
		ctx, now := context.Background(), time.Now()
		h := quota.Hold{ID: "u-" + account + "-" + string(day), Account: account, Day: day, N: n, Expires: now.Add(time.Hour)}
		if _, _, err := s.Reserve(ctx, h, 1<<40, now); err != nil {
			return err
		}
		_, err := s.Commit(ctx, h.ID, []quota.Hold{h}, 1<<40, now)
		return err
	}}
}

func TestAccountsContractSingleNode(t *testing.T) {
	srv := redistest.Start(t)
	storetest.TestAccounts(t, func(t *testing.T) storetest.Stores { return accountStores(t, []string{srv.Addr}) })
}

func TestAccountsContractCluster(t *testing.T) {
	c := redistest.StartCluster(t, 3)
	storetest.TestAccounts(t, func(t *testing.T) storetest.Stores { return accountStores(t, c.Addrs()) })
}
