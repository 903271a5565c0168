package admin

import (
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/relaycap/relaycap/internal/benchutil"
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
			var failed benchutil.FirstError // b.Fatal belongs to this goroutine, not to the workers
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					id := "bench-" + strconv.FormatInt(next.Add(1), 10)
					if _, err := a.Purchase(ctx, "alice", PurchaseRequest{Relays: 1, PurchaseID: id}); failed.Set(err) {
						return
					}
				}
			})
			if err := failed.Err(); err != nil {
				b.Fatal(err)
			}
		})
	}
}

// BenchmarkUsageOverSocket is one usage read (the account, today's
// counter and the reservations in flight) through the client and socket.
func BenchmarkUsageOverSocket(b *testing.B) {
	a := startAPI(b, nil)
	a.create(b, "alice", 100)
	a.commit(b, "alice", 3)
	var failed benchutil.FirstError
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			u, err := a.Usage(ctx, "alice")
			if err == nil && u.Used != 3 {
				err = fmt.Errorf("usage: %+v, want 3 used", u)
			}
			if failed.Set(err) {
				return
			}
		}
	})
	if err := failed.Err(); err != nil {
		b.Fatal(err)
	}
}
