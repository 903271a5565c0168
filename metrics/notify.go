package metrics

import "github.com/prometheus/client_golang/prometheus"

// WebhookStats are the webhook deliverer's counters since start.
type WebhookStats func() (delivered, failed, dropped int64)

// WatchWebhook exports the deliverer's counters, read at scrape time.
// Dropped events (given up on after 24 h of failures) deserve an alert.
func (m *Metrics) WatchWebhook(stats WebhookStats) {
	read := func(pick func(d, f, x int64) int64) func() float64 {
		return func() float64 { return float64(pick(stats())) }
	}
	m.reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "relaycap_webhook_events_delivered_total",
			Help: "Customer events the webhook receiver answered with 2xx.",
		}, read(func(d, _, _ int64) int64 { return d })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "relaycap_webhook_attempts_failed_total",
			Help: "Webhook deliveries that failed (no answer or not 2xx); each is retried or dropped.",
		}, read(func(_, f, _ int64) int64 { return f })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "relaycap_webhook_events_dropped_total",
			Help: "Customer events dropped after 24 h of failed deliveries.",
		}, read(func(_, _, x int64) int64 { return x })),
	)
}
