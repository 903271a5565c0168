package metrics

import (
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// counterStripes is how many cache lines a hot counter spreads over.
const counterStripes = 8

// stripedCounter is a counter for the per-request path. A Prometheus
// counter is one atomic word; when both cores add to it, every add moves
// its cache line across (some 100 ns under load here, more than the policy
// check it counts). Each add lands on one of the stripes instead, picked by
// the runtime's per-thread random source, so two cores seldom write the
// same line; a scrape sums them.
type stripedCounter struct {
	stripes [counterStripes]struct {
		n atomic.Uint64
		_ [120]byte // a stripe per 128 bytes: adjacent lines are fetched in pairs
	}
}

// Inc adds one.
func (c *stripedCounter) Inc() { c.stripes[rand.Uint32N(counterStripes)].n.Add(1) }

func (c *stripedCounter) value() uint64 {
	var sum uint64
	for i := range c.stripes {
		sum += c.stripes[i].n.Load()
	}
	return sum
}

// stripedVec is a counter family of striped counters, one per label
// values, collected as constant metrics at scrape time.
type stripedVec struct {
	desc     *prometheus.Desc
	mu       sync.Mutex
	children map[string]*stripedChild // by the label values, \xff-joined
}

type stripedChild struct {
	stripedCounter
	values []string
}

var _ prometheus.Collector = (*stripedVec)(nil)

func newStripedVec(name, help string, labels ...string) *stripedVec {
	return &stripedVec{desc: prometheus.NewDesc(name, help, labels, nil), children: map[string]*stripedChild{}}
}

// With returns the counter of values, made on first use. Bind the hot
// ones once: With takes a lock.
func (v *stripedVec) With(values ...string) *stripedCounter {
	key := strings.Join(values, "\xff")
	v.mu.Lock()
	defer v.mu.Unlock()
	c := v.children[key]
	if c == nil {
		c = &stripedChild{values: append([]string(nil), values...)}
		v.children[key] = c
	}
	return &c.stripedCounter
}

// Describe implements prometheus.Collector.
func (v *stripedVec) Describe(ch chan<- *prometheus.Desc) { ch <- v.desc }

// Collect implements prometheus.Collector.
func (v *stripedVec) Collect(ch chan<- prometheus.Metric) {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, c := range v.children {
		ch <- prometheus.MustNewConstMetric(v.desc, prometheus.CounterValue, float64(c.value()), c.values...)
	}
}
