package badgerstore

import (
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relaycap/relaycap/internal/syncutil"
	"github.com/relaycap/relaycap/quota"
)

// BenchmarkReserveCommit measures the engine's whole cycle for one relay on
// Badger: reserve, then a durable commit, spread over many accounts, with
// the free-space check on as the daemon runs it.
func BenchmarkReserveCommit(b *testing.B) {
	for _, sync := range []bool{false, true} {
		b.Run("sync="+strconv.FormatBool(sync), func(b *testing.B) {
			s, err := Open(b.TempDir(), Options{HistoryDays: 400, SyncWrites: sync, MinFreeBytes: 1})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			loc, err := time.LoadLocation("America/New_York")
			if err != nil {
				b.Fatal(err)
			}
			e, err := quota.NewEngine(s, s, quota.Settings{Location: loc, DefaultDailyLimit: 1 << 40})
			if err != nil {
				b.Fatal(err)
			}
			now := time.Date(2026, 11, 27, 12, 0, 0, 0, loc)
			var next atomic.Int64
			var failed syncutil.FirstError
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					login := "user" + strconv.FormatInt(next.Add(1)%1000, 10)
					var txn quota.Txn
					d, err := e.Reserve(&txn, login, now)
					if err == nil && !d.Allowed() {
						err = fmt.Errorf("reserve for %s: %v", login, d.Verdict)
					}
					if failed.Set(err) {
						return
					}
					if _, err := e.Commit(&txn, now); failed.Set(err) {
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

// BenchmarkWritable is the cost of the free-space check on the hot path,
// where one statfs answer serves for spaceTTL.
func BenchmarkWritable(b *testing.B) {
	s, err := Open(b.TempDir(), Options{HistoryDays: 1, MinFreeBytes: 1})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Writable(); err != nil {
			b.Fatal(err)
		}
	}
}
