package metrics

import (
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestStripedVecSumsEveryAdd adds from many goroutines and reads the
// family back through a registry, as /metrics does.
func TestStripedVecSumsEveryAdd(t *testing.T) {
	v := newStripedVec("test_ops_total", "Ops.", "op", "result")
	reg := prometheus.NewRegistry()
	reg.MustRegister(v)
	ok := v.With("usage", "ok")
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 10000 {
				ok.Inc()
			}
		})
	}
	wg.Wait()
	v.With("usage", "error").Inc()
	if v.With("usage", "ok") != ok {
		t.Fatal("With made a second counter for the same labels")
	}
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range fams {
		if f.GetName() != "test_ops_total" || f.GetType().String() != "COUNTER" {
			t.Fatalf("family %s of type %s", f.GetName(), f.GetType())
		}
		for _, m := range f.Metric {
			var key string
			for _, l := range m.Label {
				key += l.GetName() + "=" + l.GetValue() + " "
			}
			got[key] = m.GetCounter().GetValue()
		}
	}
	if got["op=usage result=ok "] != 80000 || got["op=usage result=error "] != 1 || len(got) != 2 {
		t.Fatalf("scraped %v, want 80000 ok and 1 error", got)
	}
}
