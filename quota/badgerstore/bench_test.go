package badgerstore

import (
	"strconv"
	"testing"
	"time"

	"github.com/relaycap/relaycap/internal/benchutil"
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
			e, err := quota.NewEngine(quota.NewLocal(s, time.Minute), s, quota.Settings{HoldTTL: time.Hour, Location: loc, DefaultDailyLimit: 1 << 40})
			if err != nil {
				b.Fatal(err)
			}
			benchutil.ReserveCommit[quota.Txn, quota.Decision](b, e, time.Date(2026, 11, 27, 12, 0, 0, 0, loc))
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
		if err := s.Writable(s.now()); err != nil {
			b.Fatal(err)
		}
	}
}
