package notify_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaycap/relaycap/internal/syncutil"
	"github.com/relaycap/relaycap/notify"
	"github.com/relaycap/relaycap/quota/badgerstore"
)

var secret = []byte("s3cret-shared-with-the-receiver")

// receiver is a webhook endpoint that checks every request the way the
// README tells receivers to, and keeps what it got.
type receiver struct {
	t      *testing.T
	srv    *httptest.Server
	status func() int       // answer; 200 when nil
	now    func() time.Time // the receiver's clock; time.Now when nil

	mu     sync.Mutex
	got    []notify.Event
	ids    map[string]int // event id -> deliveries
	bad    []string       // requests that failed a check
	gotOne chan struct{}
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{t: t, ids: map[string]int{}, gotOne: make(chan struct{}, 100)}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	r.mu.Lock()
	defer func() { r.mu.Unlock(); r.gotOne <- struct{}{} }()
	now := time.Now()
	if r.now != nil {
		now = r.now()
	}
	check := func(ok bool, what string) bool {
		if !ok {
			r.bad = append(r.bad, what)
		}
		return ok
	}
	if !check(err == nil, "body unreadable") ||
		!check(req.Method == http.MethodPost, "method "+req.Method) ||
		!check(req.Header.Get("Content-Type") == "application/json", "content type "+req.Header.Get("Content-Type")) ||
		!check(notify.Verify(secret, req.Header.Get(notify.SignatureHeader), body, now, 5*time.Minute) == nil, "signature") {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	var ev notify.Event
	if !check(json.Unmarshal(body, &ev) == nil, "json "+string(body)) ||
		!check(ev.ID != "" && ev.ID == req.Header.Get(notify.IDHeader), "id header "+req.Header.Get(notify.IDHeader)+" for "+ev.ID) {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	status := http.StatusOK
	if r.status != nil {
		status = r.status()
	}
	if status == http.StatusOK {
		r.got = append(r.got, ev)
		r.ids[ev.ID]++
	}
	w.WriteHeader(status)
}

func (r *receiver) events() ([]notify.Event, map[string]int, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ids := make(map[string]int, len(r.ids))
	for k, v := range r.ids {
		ids[k] = v
	}
	return append([]notify.Event(nil), r.got...), ids, append([]string(nil), r.bad...)
}

func openStore(t *testing.T, dir string) *badgerstore.Store {
	t.Helper()
	s, err := badgerstore.Open(dir, badgerstore.Options{HistoryDays: 10})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func thresholdEvent(now time.Time) notify.Event {
	resets := time.Date(2026, 11, 28, 5, 0, 0, 0, time.UTC)
	return notify.Event{ID: notify.NewID(now), Type: notify.TypeThreshold, Time: now, Account: "alice@example.com",
		Day: "2026-11-27", Used: 80, Limit: 100, Percent: 80, ResetsAt: &resets}
}

// clock is a settable clock for the deliverer.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time                  { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration)             { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }
func quietLog(buf *syncutil.Buffer) *slog.Logger { return slog.New(slog.NewTextHandler(buf, nil)) }

func TestDeliversSignedEventOnce(t *testing.T) {
	r := newReceiver(t)
	s := openStore(t, t.TempDir())
	defer s.Close()
	now := time.Now().UTC().Truncate(time.Second)
	ev := thresholdEvent(now)
	if added, err := s.Outbox().Put(ev, "threshold/alice@example.com/2026-11-27/80"); err != nil || !added {
		t.Fatalf("put: %v %v", added, err)
	}
	d := notify.NewDeliverer(s.Outbox(), notify.Webhook{URL: r.srv.URL, Secret: secret}, notify.DelivererOptions{})
	d.Flush(context.Background())
	d.Flush(context.Background()) // nothing left to send
	got, ids, bad := r.events()
	if len(bad) > 0 {
		t.Fatalf("receiver refused requests: %v", bad)
	}
	if len(got) != 1 || ids[ev.ID] != 1 {
		t.Fatalf("receiver got %d events %v, want the one event once", len(got), ids)
	}
	g := got[0]
	if g.Type != notify.TypeThreshold || g.Account != ev.Account || g.Day != ev.Day || g.Used != 80 ||
		g.Limit != 100 || g.Percent != 80 || g.ResetsAt == nil || !g.ResetsAt.Equal(*ev.ResetsAt) || !g.Time.Equal(now) {
		t.Fatalf("receiver got %+v, want %+v", g, ev)
	}
	if st := d.Stats(); st != (notify.Stats{Delivered: 1}) {
		t.Fatalf("stats %+v", st)
	}
	if due, err := s.Outbox().Due(now.Add(48*time.Hour), 10); err != nil || len(due) != 0 {
		t.Fatalf("outbox after delivery: %v %v", due, err)
	}
}

func TestReceiverRejectsTamperedOrStale(t *testing.T) {
	body := []byte(`{"id":"x","type":"test"}`)
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	h := notify.Sign(secret, now, body)
	if err := notify.Verify(secret, h, body, now.Add(time.Minute), 5*time.Minute); err != nil {
		t.Fatalf("good signature refused: %v", err)
	}
	if err := notify.Verify(secret, h, []byte(`{"id":"y","type":"test"}`), now, 5*time.Minute); err == nil {
		t.Fatal("tampered body accepted")
	}
	if err := notify.Verify([]byte("other"), h, body, now, 5*time.Minute); err == nil {
		t.Fatal("wrong secret accepted")
	}
	if err := notify.Verify(secret, h, body, now.Add(time.Hour), 5*time.Minute); err == nil {
		t.Fatal("an hour-old signature accepted")
	}
	if err := notify.Verify(secret, strings.Replace(h, "t=", "t=1", 1), body, now, 5*time.Minute); err == nil {
		t.Fatal("changed timestamp accepted")
	}
}

// TestBackoffThenDrop: a receiver that always fails gets the event at
// 10 s, 20 s, 40 s … capped at an hour, until 24 h after the event; then
// it is dropped with a log line and counted.
func TestBackoffThenDrop(t *testing.T) {
	r := newReceiver(t)
	r.status = func() int { return http.StatusServiceUnavailable }
	s := openStore(t, t.TempDir())
	defer s.Close()
	start := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	clk := &clock{now: start}
	ev := thresholdEvent(start)
	if _, err := s.Outbox().Put(ev, ""); err != nil {
		t.Fatal(err)
	}
	var logs syncutil.Buffer
	d := notify.NewDeliverer(s.Outbox(), notify.Webhook{URL: r.srv.URL, Secret: secret},
		notify.DelivererOptions{Now: clk.Now, Logger: quietLog(&logs)})
	wantWait := []time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second, 80 * time.Second}
	for i, w := range wantWait {
		d.Flush(context.Background())
		due, err := s.Outbox().Due(clk.Now().Add(w-time.Second), 10)
		if err != nil || len(due) != 0 {
			t.Fatalf("attempt %d: due before its backoff of %v: %v %v", i+1, w, due, err)
		}
		due, err = s.Outbox().Due(clk.Now().Add(w), 10)
		if err != nil || len(due) != 1 || due[0].Attempts != i+1 {
			t.Fatalf("attempt %d: want the entry due after %v with %d attempts, got %+v %v", i+1, w, i+1, due, err)
		}
		clk.Add(w)
	}
	attempts := len(wantWait)
	for d.Stats().Dropped == 0 && attempts < 100 {
		d.Flush(context.Background())
		attempts++
		if d.Stats().Failed != int64(attempts) {
			t.Fatalf("at %v: %d failed attempts, want %d", clk.Now().Sub(start), d.Stats().Failed, attempts)
		}
		if d.Stats().Dropped == 0 {
			clk.Add(time.Hour) // the cap
		}
	}
	if age := clk.Now().Sub(start); age < 23*time.Hour || age > 24*time.Hour {
		t.Fatalf("dropped %v after the event, want within its last hour of 24", age)
	}
	clk.Add(time.Hour)
	d.Flush(context.Background())
	st := d.Stats()
	if st.Dropped != 1 || st.Delivered != 0 || st.Failed != int64(attempts) {
		t.Fatalf("stats %+v after %d attempts", st, attempts)
	}
	if due, err := s.Outbox().Due(clk.Now().Add(48*time.Hour), 10); err != nil || len(due) != 0 {
		t.Fatalf("dropped event still in the outbox: %v %v", due, err)
	}
	if !strings.Contains(logs.String(), "event dropped") || !strings.Contains(logs.String(), ev.ID) {
		t.Fatalf("no drop line for %s in:\n%s", ev.ID, logs.String())
	}
}

// TestOnceAcrossRestart: an event put while the receiver is down stays in
// the outbox over a restart, its once key still refuses a second copy,
// and it is delivered exactly once when the receiver is back.
func TestOnceAcrossRestart(t *testing.T) {
	r := newReceiver(t)
	var down sync.Mutex
	up := false
	r.status = func() int {
		down.Lock()
		defer down.Unlock()
		if up {
			return http.StatusOK
		}
		return http.StatusBadGateway
	}
	dir := t.TempDir()
	now := time.Now().UTC()
	once := "threshold/alice@example.com/2026-11-27/100"
	ev := thresholdEvent(now)

	s := openStore(t, dir)
	if added, err := s.Outbox().Put(ev, once); err != nil || !added {
		t.Fatalf("put: %v %v", added, err)
	}
	d := notify.NewDeliverer(s.Outbox(), notify.Webhook{URL: r.srv.URL, Secret: secret}, notify.DelivererOptions{})
	d.Flush(context.Background())
	if d.Stats().Failed != 1 {
		t.Fatalf("stats %+v, want one failed attempt", d.Stats())
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openStore(t, dir)
	defer s.Close()
	if added, err := s.Outbox().Put(thresholdEvent(now), once); err != nil || added {
		t.Fatalf("second put of the same once key after a restart: added=%v err=%v", added, err)
	}
	down.Lock()
	up = true
	down.Unlock()
	later := func() time.Time { return time.Now().Add(time.Hour) } // past the backoff
	r.mu.Lock()
	r.now = later
	r.mu.Unlock()
	d = notify.NewDeliverer(s.Outbox(), notify.Webhook{URL: r.srv.URL, Secret: secret}, notify.DelivererOptions{Now: later})
	d.Flush(context.Background())
	d.Flush(context.Background())
	got, ids, bad := r.events()
	if len(bad) > 0 || len(got) != 1 || ids[ev.ID] != 1 {
		t.Fatalf("receiver got %v (refused %v), want %s once", ids, bad, ev.ID)
	}
}

func TestRunDeliversOnWake(t *testing.T) {
	r := newReceiver(t)
	s := openStore(t, t.TempDir())
	defer s.Close()
	d := notify.NewDeliverer(s.Outbox(), notify.Webhook{URL: r.srv.URL, Secret: secret},
		notify.DelivererOptions{Poll: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	n := notify.NewNotifier(s.Outbox(), d.Wake, nil)
	ev := thresholdEvent(time.Now().UTC())
	if !n.Emit(ev, "k") {
		t.Fatal("first emit not written")
	}
	if n.Emit(thresholdEvent(time.Now().UTC()), "k") {
		t.Fatal("second emit of one once key written")
	}
	<-r.gotOne // Poll is an hour: only the wake-up can have sent it
	_, ids, bad := r.events()
	if len(bad) > 0 || ids[ev.ID] != 1 || len(ids) != 1 {
		t.Fatalf("receiver got %v (refused %v)", ids, bad)
	}
}

// TestStopLetsTheAttemptFinish: the deliverer stopped while the receiver
// is taking an event waits for the answer and removes the event, so a
// restart does not send it again.
func TestStopLetsTheAttemptFinish(t *testing.T) {
	arrived, answer := make(chan struct{}), make(chan struct{})
	r := newReceiver(t)
	r.status = func() int { close(arrived); <-answer; return http.StatusOK }
	s := openStore(t, t.TempDir())
	defer s.Close()
	ev := thresholdEvent(time.Now().UTC())
	if _, err := s.Outbox().Put(ev, ""); err != nil {
		t.Fatal(err)
	}
	d := notify.NewDeliverer(s.Outbox(), notify.Webhook{URL: r.srv.URL, Secret: secret},
		notify.DelivererOptions{Poll: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	<-arrived
	cancel() // the stop comes before the answer
	close(answer)
	<-done
	if st := d.Stats(); st != (notify.Stats{Delivered: 1}) {
		t.Fatalf("stats %+v, want the one delivery", st)
	}
	if due, err := s.Outbox().Due(time.Now().Add(48*time.Hour), 10); err != nil || len(due) != 0 {
		t.Fatalf("delivered event left in the outbox, to be sent again: %v %v", due, err)
	}
	if _, ids, bad := r.events(); len(bad) > 0 || len(ids) != 1 || ids[ev.ID] != 1 {
		t.Fatalf("receiver got %v (refused %v)", ids, bad)
	}
}

func TestNilNotifierDoesNothing(t *testing.T) {
	var n *notify.Notifier
	if n.Emit(thresholdEvent(time.Now()), "") {
		t.Fatal("nil notifier reported a write")
	}
}

func TestCrossed(t *testing.T) {
	th := []int{80, 90, 100}
	for _, c := range []struct {
		before, after, limit int64
		want                 string
	}{
		{0, 1, 10, ""},
		{7, 8, 10, "80"},
		{8, 9, 10, "90"},
		{0, 10, 10, "80 90 100"},
		{10, 12, 10, ""}, // past 100 already
		{79, 80, 100, "80"},
		{80, 81, 100, ""},
		{0, 5, 0, ""},
		{5, 5, 10, ""},
		{2, 3, 3, "80 90 100"}, // 66 % → 100 %
	} {
		got := strings.Trim(fmt.Sprint(notify.Crossed(c.before, c.after, c.limit, th)), "[]")
		if got != c.want {
			t.Errorf("Crossed(%d, %d, %d) = %q, want %q", c.before, c.after, c.limit, got, c.want)
		}
	}
}
