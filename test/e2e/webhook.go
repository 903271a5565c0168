package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/relaycap/relaycap/notify"
)

// Webhook is the customer-event receiver of the sandbox: an HTTP server
// on loopback that checks every request as the README tells receivers to
// (signature over the timestamp and the raw body, id header, JSON) and
// keeps the events it accepted.
type Webhook struct {
	Secret []byte
	srv    *http.Server
	ln     net.Listener

	mu     sync.Mutex
	events []notify.Event
	bad    []string
	fresh  chan struct{} // closed and replaced on each event
}

// StartWebhook listens on 127.0.0.1 with a fresh random secret.
func StartWebhook() (*Webhook, error) {
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("webhook: %w", err)
	}
	w := &Webhook{Secret: []byte(hex.EncodeToString(b[:])), ln: ln, fresh: make(chan struct{})}
	w.srv = &http.Server{Handler: http.HandlerFunc(w.serve), ReadHeaderTimeout: 10 * time.Second}
	go w.srv.Serve(ln)
	return w, nil
}

// URL is what notify.webhook_url names.
func (w *Webhook) URL() string { return "http://" + w.ln.Addr().String() + "/relaycap" }

// Close stops the server.
func (w *Webhook) Close() error { return w.srv.Close() }

func (w *Webhook) serve(rw http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	w.mu.Lock()
	defer w.mu.Unlock()
	refuse := func(why string) {
		w.bad = append(w.bad, why)
		http.Error(rw, why, http.StatusBadRequest)
	}
	if err != nil {
		refuse("body: " + err.Error())
		return
	}
	if err := notify.Verify(w.Secret, r.Header.Get(notify.SignatureHeader), body, time.Now(), 5*time.Minute); err != nil {
		refuse("signature: " + err.Error())
		return
	}
	var ev notify.Event
	if err := json.Unmarshal(body, &ev); err != nil || ev.ID == "" || ev.ID != r.Header.Get(notify.IDHeader) {
		refuse(fmt.Sprintf("event %s (%v), id header %q", body, err, r.Header.Get(notify.IDHeader)))
		return
	}
	w.events = append(w.events, ev)
	close(w.fresh)
	w.fresh = make(chan struct{})
}

// Events returns the accepted events, in arrival order, and the requests
// refused (each a failed check).
func (w *Webhook) Events() ([]notify.Event, []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]notify.Event(nil), w.events...), append([]string(nil), w.bad...)
}

// WaitFor returns the first accepted event match takes, waiting for it
// until ctx ends.
func (w *Webhook) WaitFor(ctx context.Context, match func(notify.Event) bool) (notify.Event, error) {
	for {
		w.mu.Lock()
		for _, ev := range w.events {
			if match(ev) {
				w.mu.Unlock()
				return ev, nil
			}
		}
		fresh, bad := w.fresh, len(w.bad)
		w.mu.Unlock()
		select {
		case <-fresh:
		case <-ctx.Done():
			return notify.Event{}, fmt.Errorf("webhook: no such event (%d requests refused): %w", bad, ctx.Err())
		}
	}
}
