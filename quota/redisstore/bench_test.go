package redisstore

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relaycap/relaycap/internal/redistest"
	"github.com/relaycap/relaycap/quota"
)

// BenchmarkReserveCommit is one relay's cycle on Redis: the reserve script
// at RCPT and the commit script at end of message, over 1000 accounts,
// one node over a unix socket and a 3-node cluster on loopback. p99-ns is
// the 99th percentile of one cycle.
func BenchmarkReserveCommit(b *testing.B) {
	for _, c := range benchTargets(b) {
		b.Run(c.name, func(b *testing.B) {
			s := open(b, c.addrs, 0, 0)
			ctx := context.Background()
			var next atomic.Int64
			lat := make([]time.Duration, 0, b.N)
			for b.Loop() {
				i := next.Add(1)
				now := time.Now()
				h := quota.Hold{ID: fmt.Sprint("h", i), Account: fmt.Sprint("user", i%1000), Day: "2026-11-27", N: 1, Expires: now.Add(time.Hour)}
				if _, ok, err := s.Reserve(ctx, h, 1<<40, now); err != nil || !ok {
					b.Fatalf("reserve: %v %v", ok, err)
				}
				if _, err := s.Commit(ctx, fmt.Sprint("t", i), []quota.Hold{h}, 1<<40, now); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(now))
			}
			reportP99(b, lat)
		})
	}
}

// BenchmarkPeek is what a policy check costs the store: one peek script.
func BenchmarkPeek(b *testing.B) {
	for _, c := range benchTargets(b) {
		b.Run(c.name, func(b *testing.B) {
			s := open(b, c.addrs, 0, 0)
			ctx := context.Background()
			var next atomic.Int64
			lat := make([]time.Duration, 0, b.N)
			for b.Loop() {
				start := time.Now()
				if _, err := s.Peek(ctx, fmt.Sprint("user", next.Add(1)%1000), "2026-11-27", start); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(start))
			}
			reportP99(b, lat)
		})
	}
}

type benchTarget struct {
	name  string
	addrs []string
}

func benchTargets(b *testing.B) []benchTarget {
	srv := redistest.Start(b)
	c := redistest.StartCluster(b, 3)
	return []benchTarget{{"node=unix", []string{srv.Addr}}, {"cluster=3", c.Addrs()}}
}

func reportP99(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
}

// BenchmarkPeekRecordConcurrent is what the policy service's checks on 8
// connections cost the store: about 8 goroutines each asking one check at
// a time, over 1000 store-managed accounts on one node over a unix socket.
func BenchmarkPeekRecordConcurrent(b *testing.B) {
	srv := redistest.Start(b)
	s := open(b, []string{srv.Addr}, 0, 0)
	ctx := context.Background()
	limit := int64(1_000_000_000)
	for i := range 1000 {
		if _, err := s.UpdateAccount(ctx, fmt.Sprint("user", i), quota.Change{DailyLimit: &limit}.Apply(fmt.Sprint("user", i))); err != nil {
			b.Fatal(err)
		}
	}
	var next atomic.Int64
	b.SetParallelism(max(1, 8/runtime.GOMAXPROCS(0)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, _, found, err := s.PeekRecord(ctx, fmt.Sprint("user", next.Add(1)%1000), "2026-11-27", time.Now()); err != nil || !found {
				b.Errorf("peek: found=%v %v", found, err)
				return
			}
		}
	})
}

// BenchmarkListAccounts is one walk over 10 000 accounts in pages of 1000,
// as a scrape's count of the accounts makes it.
func BenchmarkListAccounts(b *testing.B) {
	for _, c := range benchTargets(b) {
		b.Run(c.name, func(b *testing.B) {
			s := open(b, c.addrs, 0, 0)
			ctx := context.Background()
			now := time.Now()
			const n = 10000
			for i := range n {
				name := fmt.Sprintf("user%05d", i)
				_, err := s.UpdateAccount(ctx, name, func(quota.AccountRecord, bool) (quota.AccountRecord, quota.AuditEntry, error) {
					return quota.AccountRecord{Name: name, DailyLimit: 100, Status: quota.StatusActive, Created: now, Updated: now},
						quota.AuditEntry{Time: now, Account: name, Actor: "bench", Action: quota.ActionCreate}, nil
				})
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			for b.Loop() {
				seen := 0
				for q := (quota.ListQuery{Limit: 1000}); ; {
					page, err := s.ListAccounts(ctx, q)
					if err != nil {
						b.Fatal(err)
					}
					seen += len(page)
					if len(page) < q.Limit {
						break
					}
					q.After = page[len(page)-1].Name
				}
				if seen != n {
					b.Fatalf("listed %d of %d accounts", seen, n)
				}
			}
		})
	}
}
