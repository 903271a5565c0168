package daemon

import (
	"context"

	"github.com/relaycap/relaycap/config"
	"github.com/relaycap/relaycap/notify"
	"github.com/relaycap/relaycap/quota"
)

// startNotify starts the webhook deliverer over the store's outbox when a
// webhook is configured. Preflight checked the secret; it is read again
// here because Start may race an edit of it.
func (d *Daemon) startNotify(cfg *config.Config, o Options) error {
	if cfg.Notify.WebhookURL == "" {
		return nil
	}
	secret, err := notify.ReadSecret(cfg.Notify.SecretFile)
	if err != nil {
		return &ConfigError{err}
	}
	var box notify.Outbox = d.store.Outbox()
	if d.redis != nil { // several hosts: once keys in the shared store
		box = notify.SharedOnce{Outbox: box, Shared: d.redis}
	}
	d.deliverer = notify.NewDeliverer(box, notify.Webhook{URL: cfg.Notify.WebhookURL, Secret: secret},
		notify.DelivererOptions{Logger: o.Logger, Now: o.Now, Poll: o.NotifyPoll})
	d.notifier = notify.NewNotifier(box, d.deliverer.Wake, o.Logger)
	d.metrics.WatchWebhook(func() (int64, int64, int64) {
		st := d.deliverer.Stats()
		return st.Delivered, st.Failed, st.Dropped
	})
	ctx, cancel := context.WithCancel(context.Background())
	d.stopDeliver, d.delivered = cancel, make(chan struct{})
	go func() {
		defer close(d.delivered)
		d.deliverer.Run(ctx)
	}()
	return nil
}

// stopNotify stops the deliverer and waits for it, before the store closes:
// an attempt under way is answered (or times out) and recorded first.
func (d *Daemon) stopNotify() {
	if d.stopDeliver != nil {
		d.stopDeliver()
		<-d.delivered
	}
}

// mailEvents is what the milter and the policy service report to; nil
// (an interface without a value) without a webhook and without
// burst_action suspend, so the mail path does not even call it.
func (d *Daemon) mailEvents(cfg *config.Config) quota.Events {
	var ev quota.Events
	if d.notifier != nil {
		ev = notify.MailEvents{Notifier: d.notifier, Thresholds: cfg.Notify.Thresholds}
	}
	if cfg.Quota.BurstAction == config.BurstSuspend {
		ev = burstBrake{next: ev, d: d}
	}
	return ev
}

// statusEvent sends an event for a suspension, resume or termination
// written through the admin API, with its reason and actor.
func (d *Daemon) statusEvent(e quota.AuditEntry) {
	if d.notifier == nil || e.After == nil {
		return
	}
	switch e.Action {
	case quota.ActionSuspend, quota.ActionResume, quota.ActionTerminate:
	default:
		return
	}
	d.notifier.Emit(notify.Event{ID: notify.NewID(e.Time), Type: notify.TypeStatus, Time: e.Time.UTC(),
		Account: e.Account, Status: string(e.After.Status), Reason: e.Reason, Actor: e.Actor, QueueIDs: e.QueueIDs}, "")
}
