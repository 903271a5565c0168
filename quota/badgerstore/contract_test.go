package badgerstore

import (
	"testing"
	"time"

	"github.com/relaycap/relaycap/quota"
	"github.com/relaycap/relaycap/quota/storetest"
)

// TestContract: Badger behind the in-memory holds of quota.Local, as the
// daemon runs it, passes the counter contract.
func TestContract(t *testing.T) {
	storetest.TestCounter(t, func(t *testing.T, o storetest.CounterOptions) quota.Counter {
		s, err := Open(t.TempDir(), Options{HistoryDays: 400, KeepUsage: o.KeepUsage, MinFreeBytes: 1})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return quota.NewLocal(s, time.Hour)
	})
}
