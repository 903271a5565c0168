package daemon

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/relaycap/relaycap/quota"
)

// scrapeAccounts and scrapeActive size BenchmarkScrape: store-managed
// accounts, and how many of them committed relays today (issue 12's
// ratio of a million and a hundred thousand, scaled down by ten).
const (
	scrapeAccounts = 100_000
	scrapeActive   = 10_000
)

// BenchmarkScrape is one GET /metrics over HTTP with scrapeAccounts
// store-managed accounts, created through the store's Accounts API, of
// which scrapeActive committed a relay today through the daemon's counter:
// recount=each counts the accounts again for every scrape (as after an
// account change), recount=none serves the count of the scrape before (as
// within tallyTTL).
func BenchmarkScrape(b *testing.B) {
	td := startDaemon(b, metricsOn+"quota: {default_daily_limit: 0}\n")
	seedAccounts(b, td, scrapeAccounts, scrapeActive)
	c := td.metricsClient(b)
	for _, recount := range []bool{true, false} {
		name := map[bool]string{true: "recount=each", false: "recount=none"}[recount]
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if recount {
					td.tally.changes.Add(1)
				}
				f, err := c.Scrape(context.Background())
				if err != nil {
					b.Fatal(err)
				}
				if v, _ := f.Value("relaycap_relays_used_today"); v != scrapeActive {
					b.Fatalf("relaycap_relays_used_today = %v, want %d", v, scrapeActive)
				}
				if v, _ := f.Value("relaycap_accounts", "status", "active", "source", "store"); v != scrapeAccounts {
					b.Fatalf("relaycap_accounts{active,store} = %v, want %d", v, scrapeAccounts)
				}
			}
		})
	}
}

// seedAccounts creates n store-managed accounts and commits one relay
// today for the first active of them.
func seedAccounts(b *testing.B, td *testDaemon, n, active int) {
	b.Helper()
	ctx := context.Background()
	now := td.clock.now()
	day := quota.DayOf(now, td.Config().Location)
	for i := range n {
		name := fmt.Sprintf("user%07d@example.com", i)
		storeAccount(b, td, name, 100)
		if i >= active {
			continue
		}
		h := quota.Hold{ID: "seed-" + name, Account: name, Day: day, N: 1, Expires: now.Add(time.Minute)}
		if _, ok, err := td.counter.Reserve(ctx, h, 100, now); err != nil || !ok {
			b.Fatal(ok, err)
		}
		if _, err := td.counter.Commit(ctx, "seed-"+name, []quota.Hold{h}, 100, now); err != nil {
			b.Fatal(err)
		}
	}
}
