package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/relaycap/relaycap/quota"
)

// Snapshot is the daemon's state as one scrape sees it.
type Snapshot struct {
	// Accounts counts the accounts the daemon knows (file-managed ones
	// win over store-managed ones of the same name). Logins that only get
	// quota.default_daily_limit cannot be listed and are not counted.
	Accounts Tally
	// UsedToday is the relays every login committed today, listed or not
	// (the store's day total).
	UsedToday int64
	// AccountsErr, if set, means the store could not list the accounts;
	// the account gauges are left out of that scrape.
	AccountsErr error

	KeyIDs       []string // identification keys loaded, the sealing one first
	FreeBytes    uint64   // available on state_dir's filesystem
	MinFreeBytes uint64   // store.min_free_mb in bytes
	Backend      string   // "badger"
	StateDir     string
	// Listeners maps a service (milter, policy, metrics) to its address.
	Listeners map[string]string
}

// SnapshotFunc reads the daemon's state; it runs once per scrape.
type SnapshotFunc func() Snapshot

var (
	accountsDesc = prometheus.NewDesc("relaycap_accounts",
		"Accounts by status and source (file or store); logins on the default limit are not counted.",
		[]string{"status", "source"}, nil)
	soldDesc = prometheus.NewDesc("relaycap_relays_sold_today",
		"Sum of today's limits (daily limit and today's top-ups) of the active accounts: relays sold.", nil, nil)
	usedDesc = prometheus.NewDesc("relaycap_relays_used_today",
		"Relays every login committed today (local day of quota.timezone), also logins on the default limit.", nil, nil)
	keysDesc = prometheus.NewDesc("relaycap_id_keys_loaded",
		"Identification keys loaded; 0 means every authenticated message is deferred.", nil, nil)
	keyDesc = prometheus.NewDesc("relaycap_id_key_info",
		"Always 1 per identification key loaded; sealing is 1 for the key new tokens use.",
		[]string{"key_id", "sealing"}, nil)
	freeDesc = prometheus.NewDesc("relaycap_store_free_bytes",
		"Bytes available on state_dir's filesystem.", nil, nil)
	minFreeDesc = prometheus.NewDesc("relaycap_store_min_free_bytes",
		"store.min_free_mb in bytes: below it relaycap stops writing and answers 4.3.0.", nil, nil)
	storeInfoDesc = prometheus.NewDesc("relaycap_store_info",
		"Always 1; the labels name the store backend and state directory.", []string{"backend", "state_dir"}, nil)
	listenerDesc = prometheus.NewDesc("relaycap_listener_info",
		"Always 1 per listener; the labels name the service and its address.", []string{"service", "address"}, nil)
)

// stateCollector turns a Snapshot into metrics at scrape time.
type stateCollector struct{ snap SnapshotFunc }

// WatchState registers the collector of the daemon's state.
func (m *Metrics) WatchState(snap SnapshotFunc) {
	m.reg.MustRegister(stateCollector{snap})
}

func (c stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{accountsDesc, soldDesc, usedDesc, keysDesc, keyDesc, freeDesc, minFreeDesc, storeInfoDesc, listenerDesc} {
		ch <- d
	}
}

func (c stateCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.snap()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	if s.AccountsErr == nil {
		for _, status := range Statuses {
			for _, source := range []quota.Source{quota.FromFile, quota.FromStore} {
				gauge(accountsDesc, float64(s.Accounts.Count(status, source)), string(status), string(source))
			}
		}
		gauge(soldDesc, float64(s.Accounts.Sold))
		gauge(usedDesc, float64(s.UsedToday))
	}
	gauge(keysDesc, float64(len(s.KeyIDs)))
	for i, id := range s.KeyIDs {
		sealing := "0"
		if i == 0 {
			sealing = "1"
		}
		gauge(keyDesc, 1, id, sealing)
	}
	gauge(freeDesc, float64(s.FreeBytes))
	gauge(minFreeDesc, float64(s.MinFreeBytes))
	gauge(storeInfoDesc, 1, s.Backend, s.StateDir)
	for service, addr := range s.Listeners {
		gauge(listenerDesc, 1, service, addr)
	}
}

// Statuses are the account statuses the gauges break down, in order.
var Statuses = []quota.Status{quota.StatusActive, quota.StatusSuspended, quota.StatusTerminated}

// Tally counts accounts one at a time, so that a scrape never holds them
// all: by status and source, and the limits of the active ones summed.
type Tally struct {
	counts map[statusSource]int64
	// Sold is the sum of the active accounts' limits (daily limit plus the
	// day's top-ups): the relays sold for the day.
	Sold int64
}

type statusSource struct {
	status quota.Status
	source quota.Source
}

// Add counts a.
func (t *Tally) Add(a quota.Account) {
	if t.counts == nil {
		t.counts = make(map[statusSource]int64)
	}
	t.counts[statusSource{a.Status, a.Source}]++
	if a.Status == quota.StatusActive {
		t.Sold += a.Limit()
	}
}

// Count is how many accounts of status from source were added.
func (t Tally) Count(status quota.Status, source quota.Source) int64 {
	return t.counts[statusSource{status, source}]
}
