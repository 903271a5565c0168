package admin

import (
	"strconv"
	"sync/atomic"
	"testing"
)

// BenchmarkPurchaseOverSocket is one purchase with a fresh id through the
// client, the unix socket, the handler and a Badger transaction (record,
// purchase, index and audit entry), from GOMAXPROCS concurrent callers.
func BenchmarkPurchaseOverSocket(b *testing.B) {
	for _, sync := range []bool{false, true} {
		b.Run("sync="+strconv.FormatBool(sync), func(b *testing.B) {
			a := startAPISync(b, nil, sync)
			a.create(b, "alice", 1)
			var next atomic.Int64
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					id := "bench-" + strconv.FormatInt(next.Add(1), 10)
					if _, err := a.Purchase(ctx, "alice", PurchaseRequest{Relays: 1, PurchaseID: id}); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

// BenchmarkUsageOverSocket is one usage read (the account, today's
// counter and the reservations in flight) through the client and socket.
func BenchmarkUsageOverSocket(b *testing.B) {
	a := startAPI(b, nil)
	a.create(b, "alice", 100)
	a.commit(b, "alice", 3)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if u, err := a.Usage(ctx, "alice"); err != nil || u.Used != 3 {
				b.Fatal(u, err)
			}
		}
	})
}
