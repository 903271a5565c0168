package quota

import (
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/relaycap/relaycap/internal/syncutil"
)

// BenchmarkEngineReserveCommit measures the engine's own cost for one
// relay (lookup, per-account lock, reserve, commit) over a map store;
// badgerstore's benchmark adds the database.
func BenchmarkEngineReserveCommit(b *testing.B) {
	st := newMemStore()
	e, err := NewEngine(st, st, Settings{Location: newYork, DefaultDailyLimit: 1 << 40})
	if err != nil {
		b.Fatal(err)
	}
	now := at("2026-11-27 12:00:00")
	var next atomic.Int64
	b.ReportAllocs()
	var failed syncutil.FirstError
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			login := "user" + strconv.FormatInt(next.Add(1)%1000, 10)
			var txn Txn
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
}
