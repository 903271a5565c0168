package metrics

import (
	"errors"
	"testing"
	"time"

	"github.com/relaycap/relaycap/quota"
)

// failing is a store whose every call fails; the wrapper must pass the
// error through untouched and count it.
type failing struct{ quota.Store }

var errDown = errors.New("down")

func (failing) Usage(string, quota.Day, time.Time) (int64, error)  { return 0, errDown }
func (failing) AddUsage(string, []quota.DayCount) ([]int64, error) { return nil, errDown }
func (failing) Writable(time.Time) error                           { return errDown }

func TestStoreCountsResults(t *testing.T) {
	m := New(BuildInfo{Version: "test"})
	s := m.WrapStore(failing{})
	if _, err := s.Usage("a", "2026-11-27", time.Now()); !errors.Is(err, errDown) {
		t.Fatalf("Usage: %v, want the store's error", err)
	}
	if _, err := s.AddUsage("a", []quota.DayCount{{Day: "2026-11-27", N: 1}}); !errors.Is(err, errDown) {
		t.Fatalf("AddUsage: %v", err)
	}
	if err := s.Writable(time.Now()); !errors.Is(err, errDown) {
		t.Fatalf("Writable: %v", err)
	}
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range fams {
		if f.GetName() != "relaycap_store_operations_total" {
			continue
		}
		for _, mt := range f.GetMetric() {
			var op, result string
			for _, l := range mt.GetLabel() {
				switch l.GetName() {
				case "op":
					op = l.GetValue()
				case "result":
					result = l.GetValue()
				}
			}
			got[op+"/"+result] = mt.GetCounter().GetValue()
		}
	}
	for _, k := range []string{"usage/error", "add_usage/error", "writable/error"} {
		if got[k] != 1 {
			t.Errorf("%s = %v, want 1", k, got[k])
		}
	}
	if got["usage/ok"] != 0 || got["accounts/error"] != 0 {
		t.Errorf("untouched series moved: %v", got)
	}
}
