package quota

import (
	"strconv"
	"sync/atomic"
	"testing"
)

// BenchmarkEngineReserveCommit measures the engine's own cost for one
// relay (lookup, per-account lock, reserve, commit) over a map store;
// badgerstore's benchmark adds the database.
func BenchmarkEngineReserveCommit(b *testing.B) {
	st := newMemStore()
	e, _ := NewEngine(st, st, Settings{Location: newYork, DefaultDailyLimit: 1 << 40})
	now := at("2026-11-27 12:00:00")
	var next atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			login := "user" + strconv.FormatInt(next.Add(1)%1000, 10)
			var txn Txn
			if d, err := e.Reserve(&txn, login, now); err != nil || !d.Allowed() {
				b.Fatal(d.Verdict, err)
			}
			if _, err := e.Commit(&txn, now); err != nil {
				b.Fatal(err)
			}
		}
	})
}
