// Package metrics is relaycap's Prometheus instrumentation and its /healthz:
// counters the milter and policy adapters feed through small observer
// interfaces, a store wrapper that times every store operation, and a
// collector that reads the daemon's state at scrape time.
//
// Names follow the Prometheus naming guide: the relaycap_ prefix, base
// units (seconds, bytes), _total on counters. No metric has a per-account
// label, ever: one label value per customer would grow the series without
// bound. Per-account numbers belong to the admin API.
package metrics

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Refusal reasons, the values of relaycap_recipients_refused_total's reason
// label: the quota verdicts, a store failure, and mail without a login
// refused at MAIL (milter.unauthenticated: reject).
var reasons = []string{"over_quota", "over_hourly_limit", "suspended", "terminated", "not_provisioned", "unauthenticated", "tempfail"}

// The verdicts dry run lets through: limits, not sanctions.
var limitReasons = []string{"over_quota", "over_hourly_limit"}

// Message results, as in the milter's decision lines ("refused": the
// account was suspended or terminated before its end of message).
var results = []string{"accept", "refused", "tempfail", "aborted", "connection_lost"}

// Policy actions (access(5) verbs in lower case).
var actions = []string{"dunno", "defer_if_permit", "reject"}

// Store operations, the values of the op label: the counter's, then the
// accounts store's.
var storeOps = []string{"usage", "add_usage", "writable",
	"account", "list_accounts", "update_account", "delete_account", "purchase", "top"}

// Metrics holds relaycap's collectors in a registry of its own.
type Metrics struct {
	reg *prometheus.Registry

	relays   prometheus.Counter
	refused  *prometheus.CounterVec
	wouldRef *prometheus.CounterVec
	messages *prometheus.CounterVec
	requests *stripedVec
	sessions prometheus.Gauge
	held     prometheus.Gauge

	storeOps     *stripedVec
	storeSeconds *prometheus.HistogramVec

	adminRequests  *prometheus.CounterVec
	adminSeconds   *prometheus.HistogramVec
	purchases      *prometheus.CounterVec
	purchasedRelay *prometheus.CounterVec

	reloads     *prometheus.CounterVec
	lastReload  prometheus.Gauge
	lastSuccess prometheus.Gauge

	// Children bound once: the hot path does no label lookup.
	milterRefused, policyRefused map[string]prometheus.Counter
	milterWould, policyWould     map[string]prometheus.Counter
	messageResult                map[string]prometheus.Counter
	policyAction                 map[string]*stripedCounter
}

// BuildInfo is what relaycap_build_info says.
type BuildInfo struct {
	Version, Commit, GoVersion string
}

// New returns relaycap's metrics with the Go and process collectors.
func New(b BuildInfo) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		relays: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "relaycap_relays_committed_total",
			Help: "Relays (accepted recipients) committed to the store; equals the sum of the decision lines' accepted.",
		}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "relaycap_recipients_refused_total",
			Help: "Recipients refused, by the service that refused them and why (unauthenticated: MAIL refused for want of a login).",
		}, []string{"service", "reason"}),
		wouldRef: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "relaycap_recipients_would_refuse_total",
			Help: "Recipients let through in dry run (quota.mode: dry_run or an account's dry_run) that enforcing would have refused.",
		}, []string{"service", "reason"}),
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "relaycap_messages_total",
			Help: "Messages of authenticated logins that reached RCPT, by result (the decision lines).",
		}, []string{"result"}),
		requests: newStripedVec("relaycap_policy_requests_total", "Policy delegation requests answered, by action.", "action"),
		sessions: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "relaycap_milter_sessions",
			Help: "Milter connections open.",
		}),
		held: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "relaycap_reservations",
			Help: "Relays reserved by open milter transactions, not yet committed or released.",
		}),
		storeOps: newStripedVec("relaycap_store_operations_total", "Store operations, by operation and result.", "op", "result"),
		storeSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "relaycap_store_operation_duration_seconds",
			Help:    "Latency of store operations.",
			Buckets: []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
		}, []string{"op"}),
		adminRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "relaycap_admin_requests_total",
			Help: "Admin API requests, by route pattern and HTTP status code.",
		}, []string{"route", "code"}),
		adminSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "relaycap_admin_request_duration_seconds",
			Help:    "Latency of admin API requests, by route pattern.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"route"}),
		purchases: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "relaycap_purchases_total",
			Help: "Purchases asked of the store, by result: new, replay (idempotent retry), conflict, refused, error.",
		}, []string{"result"}),
		purchasedRelay: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "relaycap_purchased_relays_total",
			Help: "Relays bought by new purchases, by kind: daily (raises the daily limit) or today_only.",
		}, []string{"kind"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "relaycap_config_reloads_total",
			Help: "Config reloads (SIGHUP), by result.",
		}, []string{"result"}),
		lastReload: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "relaycap_config_last_reload_timestamp_seconds",
			Help: "When the config was last loaded or reloaded (Unix time).",
		}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "relaycap_config_last_reload_successful",
			Help: "1 if the last reload succeeded (or none was tried), 0 if it failed.",
		}),
	}
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "relaycap_build_info",
		Help:        "Always 1; the labels say which relaycap runs.",
		ConstLabels: prometheus.Labels{"version": b.Version, "commit": b.Commit, "goversion": b.GoVersion},
	})
	build.Set(1)
	m.lastSuccess.Set(1)
	m.reg.MustRegister(m.relays, m.refused, m.wouldRef, m.messages, m.requests, m.sessions, m.held,
		m.storeOps, m.storeSeconds, m.adminRequests, m.adminSeconds, m.purchases, m.purchasedRelay, m.reloads, m.lastReload, m.lastSuccess, build,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	m.milterRefused = bind(m.refused.WithLabelValues, reasons, "milter")
	m.policyRefused = bind(m.refused.WithLabelValues, reasons, "policy")
	m.milterWould = bind(m.wouldRef.WithLabelValues, limitReasons, "milter")
	m.policyWould = bind(m.wouldRef.WithLabelValues, limitReasons, "policy")
	m.messageResult = bind(m.messages.WithLabelValues, results)
	m.policyAction = bind(m.requests.With, actions)
	m.opTable() // every op's series at 0 from the start
	for _, r := range []string{"success", "failure"} {
		m.reloads.WithLabelValues(r)
	}
	for _, r := range []string{"new", "replay", "conflict", "refused", "error"} {
		m.purchases.WithLabelValues(r)
	}
	for _, k := range []string{"daily", "today_only"} {
		m.purchasedRelay.WithLabelValues(k)
	}
	return m
}

// bind creates a family's children for each value of its last label, the
// leading labels fixed, so that every series exists (at 0) from the start:
// rate() and the dashboard need no special case for a reason never seen.
// with makes a child from label values: CounterVec.WithLabelValues, or
// stripedVec.With for the families on the per-request path.
func bind[C any](with func(...string) C, values []string, leading ...string) map[string]C {
	out := make(map[string]C, len(values))
	for _, v := range values {
		out[v] = with(append(leading, v)...)
	}
	return out
}

// Registry is the registry /metrics serves.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Reloaded counts a config reload and stamps its time (Unix seconds).
func (m *Metrics) Reloaded(ok bool, unix float64) {
	result, v := "success", 1.0
	if !ok {
		result, v = "failure", 0
	}
	m.reloads.WithLabelValues(result).Inc()
	m.lastSuccess.Set(v)
	m.lastReload.Set(unix)
}

// Loaded stamps the time the config was first loaded.
func (m *Metrics) Loaded(unix float64) { m.lastReload.Set(unix) }

// counter is value's child bound by bind, or with's for a value bind did
// not know.
func counter[C any](known map[string]C, with func(...string) C, value string, leading ...string) C {
	if c, ok := known[value]; ok {
		return c
	}
	return with(append(leading, value)...)
}

// Milter returns the observer the milter reports to.
func (m *Metrics) Milter() MilterObserver { return MilterObserver{m} }

// Policy returns the observer the policy service reports to.
func (m *Metrics) Policy() PolicyObserver { return PolicyObserver{m} }

// Admin returns the observer the admin API reports to.
func (m *Metrics) Admin() AdminObserver { return AdminObserver{m} }

// AdminObserver counts admin API requests and purchases (it satisfies
// admin.Observer). Routes are patterns ("{name}", not the account), so
// the label stays bounded.
type AdminObserver struct{ m *Metrics }

// Routes creates the series of each route pattern (status 200) at 0, so
// that they exist before the first request.
func (o AdminObserver) Routes(routes []string) {
	for _, r := range routes {
		o.m.adminRequests.WithLabelValues(r, "200")
		o.m.adminSeconds.WithLabelValues(r)
	}
}

// Answered counts a request and its latency.
func (o AdminObserver) Answered(route string, status int, seconds float64) {
	o.m.adminRequests.WithLabelValues(route, strconv.Itoa(status)).Inc()
	o.m.adminSeconds.WithLabelValues(route).Observe(seconds)
}

// Purchased counts a purchase and, for a new one, its relays.
func (o AdminObserver) Purchased(result string, todayOnly bool, relays int64) {
	o.m.purchases.WithLabelValues(result).Inc()
	if result != "new" {
		return
	}
	kind := "daily"
	if todayOnly {
		kind = "today_only"
	}
	o.m.purchasedRelay.WithLabelValues(kind).Add(float64(relays))
}

// MilterObserver counts what the milter does (it satisfies milter.Observer).
type MilterObserver struct{ m *Metrics }

// SessionOpened counts a milter connection in.
func (o MilterObserver) SessionOpened() { o.m.sessions.Inc() }

// SessionClosed counts a milter connection out.
func (o MilterObserver) SessionClosed() { o.m.sessions.Dec() }

// Held adds n (negative on commit or release) to the relays reserved.
func (o MilterObserver) Held(n int64) { o.m.held.Add(float64(n)) }

// Refused counts a recipient the milter refused.
func (o MilterObserver) Refused(reason string) {
	counter(o.m.milterRefused, o.m.refused.WithLabelValues, reason, "milter").Inc()
}

// Decided counts a message by the result of its decision line, and the
// relays it committed.
func (o MilterObserver) Decided(result string, accepted int64) {
	counter(o.m.messageResult, o.m.messages.WithLabelValues, result).Inc()
	if result == "accept" {
		o.m.relays.Add(float64(accepted))
	}
}

// WouldRefuse counts a recipient the milter let through in dry run.
func (o MilterObserver) WouldRefuse(reason string) {
	counter(o.m.milterWould, o.m.wouldRef.WithLabelValues, reason, "milter").Inc()
}

// PolicyObserver counts what the policy service answers (it satisfies
// policy.Observer).
type PolicyObserver struct{ m *Metrics }

// Answered counts a request by its action ("dunno", "defer_if_permit",
// "reject").
func (o PolicyObserver) Answered(action string) {
	counter(o.m.policyAction, o.m.requests.With, action).Inc()
}

// Refused counts a recipient the policy service refused.
func (o PolicyObserver) Refused(reason string) {
	counter(o.m.policyRefused, o.m.refused.WithLabelValues, reason, "policy").Inc()
}

// WouldRefuse counts a recipient the policy service let through in dry run.
func (o PolicyObserver) WouldRefuse(reason string) {
	counter(o.m.policyWould, o.m.wouldRef.WithLabelValues, reason, "policy").Inc()
}
