package metrics

import (
	"testing"
	"time"

	"github.com/relaycap/relaycap/quota"
)

// nopStore answers at once: what is left is the wrapper's own cost.
type nopStore struct{}

func (nopStore) Usage(string, quota.Day, time.Time) (int64, error) { return 1, nil }
func (nopStore) AddUsage(_ string, add []quota.DayCount) ([]int64, error) {
	return make([]int64, len(add)), nil
}
func (nopStore) Writable(time.Time) error { return nil }

// BenchmarkStoreCalls is what one allowed recipient and its commit ask of
// the store (Usage, Writable, AddUsage), without and with the wrapper.
func BenchmarkStoreCalls(b *testing.B) {
	add := []quota.DayCount{{Day: "2026-11-27", N: 1}}
	now := time.Now()
	for _, c := range []struct {
		name  string
		store quota.Store
	}{{"raw", nopStore{}}, {"wrapped", New(BuildInfo{}).WrapStore(nopStore{})}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				c.store.Usage("alice", "2026-11-27", now)
				c.store.Writable(now)
				c.store.AddUsage("alice", add)
			}
		})
	}
}

// BenchmarkObserverCalls is what one message of one recipient tells the
// milter observer, and one policy answer.
func BenchmarkObserverCalls(b *testing.B) {
	m := New(BuildInfo{})
	mo, po := m.Milter(), m.Policy()
	b.ReportAllocs()
	for b.Loop() {
		mo.SessionOpened()
		mo.Held(1)
		mo.Held(-1)
		mo.Decided("accept", 1)
		mo.SessionClosed()
		po.Answered("dunno")
	}
}
