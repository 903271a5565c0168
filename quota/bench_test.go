package quota

import (
	"testing"
	"time"

	"github.com/relaycap/relaycap/internal/benchutil"
)

// BenchmarkEngineReserveCommit measures the engine's own cost for one
// relay (lookup, per-account lock, reserve, commit) over a map store;
// badgerstore's benchmark adds the database.
func BenchmarkEngineReserveCommit(b *testing.B) {
	st := newMemStore()
	e, err := NewEngine(NewLocal(st, time.Minute), st, Settings{HoldTTL: time.Hour, Location: newYork, DefaultDailyLimit: 1 << 40})
	if err != nil {
		b.Fatal(err)
	}
	benchutil.ReserveCommit[Txn, Decision](b, e, at("2026-11-27 12:00:00"))
}
