package notify

import (
	"context"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"
)

// DelivererOptions tune a Deliverer; zero values take the defaults.
type DelivererOptions struct {
	Logger *slog.Logger
	// Now reads the clock (adapters own the clock; tests pass their own).
	Now func() time.Time
	// Poll is how often the outbox is looked at without a Wake: retries
	// fall due, and another host may have put events. Default 5 s.
	Poll time.Duration
	// FirstRetry is the wait after the first failure; it doubles with
	// each one up to MaxRetry. Defaults 10 s and 1 h.
	FirstRetry, MaxRetry time.Duration
	// GiveUp is how long after its time an event is still retried; a
	// failure after that drops it. Default 24 h.
	GiveUp time.Duration
}

// Stats count what a Deliverer did since it started, for metrics.
type Stats struct {
	Delivered int64 // events the receiver answered 2xx
	Failed    int64 // failed attempts (each is retried or dropped)
	Dropped   int64 // events given up on after GiveUp
}

// Deliverer takes events from an Outbox to a Webhook, one at a time,
// oldest first. An event leaves the outbox only after a 2xx answer (or
// when given up on), so delivery is at least once: a crash between the
// answer and the removal sends it again, with the same id.
type Deliverer struct {
	box  Outbox
	hook Webhook
	o    DelivererOptions
	log  *slog.Logger
	wake chan struct{}

	delivered, failed, dropped atomic.Int64
}

// NewDeliverer returns a deliverer; Run starts it.
func NewDeliverer(box Outbox, hook Webhook, o DelivererOptions) *Deliverer {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Poll <= 0 {
		o.Poll = 5 * time.Second
	}
	if o.FirstRetry <= 0 {
		o.FirstRetry = 10 * time.Second
	}
	if o.MaxRetry <= 0 {
		o.MaxRetry = time.Hour
	}
	if o.GiveUp <= 0 {
		o.GiveUp = 24 * time.Hour
	}
	return &Deliverer{box: box, hook: hook, o: o, log: o.Logger.With("component", "notify"), wake: make(chan struct{}, 1)}
}

// Wake makes Run look at the outbox now. It never blocks.
func (d *Deliverer) Wake() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Stats returns the counters.
func (d *Deliverer) Stats() Stats {
	return Stats{Delivered: d.delivered.Load(), Failed: d.failed.Load(), Dropped: d.dropped.Load()}
}

// Run delivers until ctx ends, and then returns once the attempt under way
// is answered.
func (d *Deliverer) Run(ctx context.Context) {
	t := time.NewTicker(d.o.Poll)
	defer t.Stop()
	for {
		d.Flush(ctx)
		select {
		case <-ctx.Done():
			return
		case <-d.wake:
		case <-t.C:
		}
	}
}

const batch = 32

// Flush attempts every entry that is due now once, and returns when none
// is left due, ctx ends, or the outbox fails (logged; the next Flush tries
// again).
func (d *Deliverer) Flush(ctx context.Context) {
	for ctx.Err() == nil {
		due, err := d.box.Due(d.o.Now(), batch)
		if err != nil {
			d.log.Error("reading the outbox failed", "err", err)
			return
		}
		for _, e := range due {
			if ctx.Err() != nil || !d.attempt(ctx, e) {
				return
			}
		}
		if len(due) < batch {
			return
		}
	}
}

// attempt posts one entry and records the outcome; false means the outbox
// failed and flushing should stop. A post under way when ctx ends is let
// finish, within the webhook client's timeout: the receiver may have taken
// the event already, and cutting the answer off would send it again after
// a clean restart.
func (d *Deliverer) attempt(ctx context.Context, e Entry) bool {
	now := d.o.Now()
	resp, err := d.hook.Post(context.WithoutCancel(ctx), e.Event, now)
	if err == nil && resp.OK() {
		d.delivered.Add(1)
		if err := d.box.Done(e.Event.ID); err != nil {
			d.log.Error("delivered event stays in the outbox and will be sent again", "id", e.Event.ID, "err", err)
			return false
		}
		d.log.Debug("event delivered", "id", e.Event.ID, "type", e.Event.Type, "account", e.Event.Account, "status", resp.Status)
		return true
	}
	if ctx.Err() != nil {
		return false // shutting down: the attempt does not count
	}
	d.failed.Add(1)
	reason := "status " + httpStatus(resp.Status)
	if err != nil {
		reason = err.Error()
	}
	attempts := e.Attempts + 1
	next := now.Add(d.backoff(attempts))
	if next.Sub(e.Event.Time) > d.o.GiveUp {
		d.dropped.Add(1)
		d.log.Error("event dropped: webhook failed for too long", "id", e.Event.ID, "type", e.Event.Type,
			"account", e.Event.Account, "attempts", attempts, "since", e.Event.Time, "last_error", reason)
		if err := d.box.Done(e.Event.ID); err != nil {
			d.log.Error("dropping the event from the outbox failed", "id", e.Event.ID, "err", err)
			return false
		}
		return true
	}
	d.log.Warn("webhook delivery failed; will retry", "id", e.Event.ID, "type", e.Event.Type,
		"attempts", attempts, "next", next, "err", reason)
	if err := d.box.Retry(e.Event.ID, attempts, next); err != nil {
		d.log.Error("recording the failed delivery failed", "id", e.Event.ID, "err", err)
		return false
	}
	return true
}

// backoff is the wait after the nth failure: FirstRetry doubled n-1
// times, at most MaxRetry.
func (d *Deliverer) backoff(n int) time.Duration {
	w := d.o.FirstRetry
	for i := 1; i < n && w < d.o.MaxRetry; i++ {
		w *= 2
	}
	return min(w, d.o.MaxRetry)
}

func httpStatus(code int) string {
	if code == 0 {
		return "none"
	}
	return strconv.Itoa(code)
}
