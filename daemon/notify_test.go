package daemon

import (
	"bufio"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	gomilter "github.com/d--j/go-milter"

	"github.com/relaycap/relaycap/config"
	"github.com/relaycap/relaycap/idheader"
	"github.com/relaycap/relaycap/internal/syncutil"
	"github.com/relaycap/relaycap/notify"
)

const hookSecret = "daemon-test-secret"

// hookReceiver is a real HTTP webhook endpoint: it checks the signature
// (against the daemon's clock), the body and the id header, and keeps
// every event it accepted.
type hookReceiver struct {
	t   testing.TB
	srv *httptest.Server
	now func() time.Time

	mu     sync.Mutex
	down   bool // answer 503
	events []notify.Event
	count  map[string]int
	bad    []string
	got    chan notify.Event
}

func newHookReceiver(t testing.TB, now func() time.Time) *hookReceiver {
	r := &hookReceiver{t: t, now: now, count: map[string]int{}, got: make(chan notify.Event, 100)}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		var ev notify.Event
		r.mu.Lock()
		defer r.mu.Unlock()
		if err := notify.Verify([]byte(hookSecret), req.Header.Get(notify.SignatureHeader), body, r.now(), time.Minute); err != nil {
			r.bad = append(r.bad, fmt.Sprintf("event %s: %v", req.Header.Get(notify.IDHeader), err))
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		if err := json.Unmarshal(body, &ev); err != nil || ev.ID == "" || ev.ID != req.Header.Get(notify.IDHeader) {
			r.bad = append(r.bad, fmt.Sprintf("body %s (%v), id header %q", body, err, req.Header.Get(notify.IDHeader)))
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		if r.down {
			http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
			return
		}
		r.events = append(r.events, ev)
		r.count[ev.ID]++
		r.got <- ev
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *hookReceiver) setDown(down bool) { r.mu.Lock(); r.down = down; r.mu.Unlock() }

// waitFor returns the next event accepted, failing after 10 s.
func (r *hookReceiver) waitFor(t testing.TB, what string) notify.Event {
	t.Helper()
	select {
	case ev := <-r.got:
		return ev
	case <-time.After(10 * time.Second):
		r.mu.Lock()
		defer r.mu.Unlock()
		t.Fatalf("no %s event reached the receiver (refused requests: %v)", what, r.bad)
		return notify.Event{}
	}
}

func (r *hookReceiver) check(t testing.TB) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.bad) > 0 {
		t.Fatalf("receiver refused requests: %v", r.bad)
	}
	for id, n := range r.count {
		if n != 1 {
			t.Fatalf("event %s delivered %d times", id, n)
		}
	}
}

func writeSecret(t testing.TB) string {
	path := filepath.Join(t.TempDir(), "webhook.secret")
	if err := os.WriteFile(path, []byte(hookSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func notifyConfig(url, secret string) string {
	return fmt.Sprintf("notify: {webhook_url: %q, secret_file: %q, thresholds: [50, 100]}\n", url, secret)
}

// TestThresholdAndRefusalEvents: a customer with 4 relays a day crosses
// 50 % and 100 % through the milter and is refused once by the milter and
// once by the policy service; the receiver gets three signed events, each
// once, also after a restart.
func TestThresholdAndRefusalEvents(t *testing.T) {
	clk := &clock{}
	clk.set(time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC))
	r := newHookReceiver(t, clk.now)
	td := startDaemon(t, metricsOn+notifyConfig(r.srv.URL, writeSecret(t))+"quota: {accounts: {alice@example.com: 4, bob@example.com: 1}}\n")
	td.clock = clk // the receiver and the daemon share the clock
	td.stop()
	td.start(t)

	s := td.milterSession(t)
	s.mail("alice@example.com")
	if n, _ := s.rcpts(2); n != 2 {
		t.Fatalf("accepted %d of 2", n)
	}
	s.data(plainHeaders)
	half := r.waitFor(t, "50 %")
	if half.Type != notify.TypeThreshold || half.Percent != 50 || half.Account != "alice@example.com" ||
		half.Used != 2 || half.Limit != 4 || half.Day != "2026-11-27" || half.ResetsAt == nil ||
		!half.ResetsAt.Equal(time.Date(2026, 11, 28, 5, 0, 0, 0, time.UTC)) {
		t.Fatalf("50 %% event: %+v", half)
	}

	s.mail("alice@example.com")
	if n, refused := s.rcpts(3); n != 2 || len(refused) != 1 {
		t.Fatalf("accepted %d of 3, refused %v", n, refused)
	}
	refused := r.waitFor(t, "quota refused") // at RCPT, before the commit
	if refused.Type != notify.TypeQuotaRefused || refused.Used != 2 || refused.Limit != 4 {
		t.Fatalf("refusal event: %+v", refused)
	}
	s.data(plainHeaders)
	full := r.waitFor(t, "100 %")
	if full.Type != notify.TypeThreshold || full.Percent != 100 || full.Used != 4 {
		t.Fatalf("100 %% event: %+v", full)
	}
	p := td.policyConn(t)
	if a := p.ask(rcptRequest("alice@example.com")); !strings.HasPrefix(a, "DEFER_IF_PERMIT 4.7.1") {
		t.Fatalf("policy: %s", a)
	}

	// After a restart the once keys hold (the process cache is gone), and
	// nothing is sent again. bob's event comes after any leftover, so
	// once it is in, alice's events would have been resent already.
	td.stop()
	td.start(t)
	p = td.policyConn(t)
	if a := p.ask(rcptRequest("alice@example.com")); !strings.HasPrefix(a, "DEFER_IF_PERMIT 4.7.1") {
		t.Fatalf("policy after restart: %s", a)
	}
	s = td.milterSession(t)
	s.mail("bob@example.com")
	s.rcpts(1)
	s.data(plainHeaders)
	for _, pct := range []int{50, 100} { // 1 of 1 crosses both, in order
		if ev := r.waitFor(t, "bob's threshold"); ev.Account != "bob@example.com" || ev.Percent != pct {
			t.Fatalf("after restart got %+v, want bob's %d %% event", ev, pct)
		}
	}
	r.check(t)
	r.mu.Lock()
	n := len(r.events)
	r.mu.Unlock()
	if n != 5 {
		t.Fatalf("receiver got %d events, want 5", n)
	}
	// The delivered counter may trail the receiver by one answer; the
	// failure counters cannot move in this test.
	f := td.scrape(t)
	want(t, f, 0, "relaycap_webhook_events_dropped_total")
	want(t, f, 0, "relaycap_webhook_attempts_failed_total")
}

// TestOutboxSurvivesKillNineBeforeDelivery: a daemon in a child process
// crosses a threshold while the receiver is down and is killed with
// SIGKILL; the daemon started again on its state directory delivers the
// event, once.
func TestOutboxSurvivesKillNineBeforeDelivery(t *testing.T) {
	if cfg := os.Getenv("RELAYCAP_NOTIFY_KILL9_CONFIG"); cfg != "" {
		serveUntilKilled(cfg)
		return
	}
	// The child posts to a receiver that is down and reads the real
	// clock, as that receiver does. The restarted daemon posts to another
	// receiver, which the child's requests cannot reach: one the kill
	// cut short may still be read after the child is dead. Those two
	// share a clock an hour later, past any backoff.
	down := newHookReceiver(t, time.Now)
	down.setDown(true)
	clk := &clock{}
	r := newHookReceiver(t, clk.now)
	dir, secret := t.TempDir(), writeSecret(t)
	if _, err := idheader.Keygen(filepath.Join(dir, "id.keys"), rand.Reader); err != nil {
		t.Fatal(err)
	}
	const accounts = "quota: {accounts: {alice@example.com: 2}}\n"
	td := &testDaemon{dir: dir, clock: clk, logs: &syncutil.Buffer{},
		cfgPath: writeConfig(t, dir, notifyConfig(down.srv.URL, secret)+accounts)}

	cmd := exec.Command(os.Args[0], "-test.run=^TestOutboxSurvivesKillNineBeforeDelivery$")
	cmd.Env = append(os.Environ(), "RELAYCAP_NOTIFY_KILL9_CONFIG="+td.cfgPath)
	cmd.Stderr = td.logs
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	if line, err := bufio.NewReader(out).ReadString('\n'); line != "ready\n" {
		t.Fatalf("child: %q %v\n%s", line, err, td.logs.String())
	}
	s := td.milterSession(t)
	s.mail("alice@example.com")
	s.rcpts(2)
	if _, act := s.data(plainHeaders); act.Type != gomilter.ActionAccept {
		t.Fatalf("end of message: %v\n%s", act, td.logs.String())
	}
	// The accept came after the event was written; the receiver is down.
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	// Close waits for the child's requests being answered and drops the
	// ones not read yet; every one answered was signed right.
	down.srv.Close()
	down.check(t)

	writeConfig(t, dir, notifyConfig(r.srv.URL, secret)+accounts) // the same state directory
	clk.set(time.Now().Add(time.Hour))
	td.start(t)
	for _, pct := range []int{50, 100} { // 2 of 2 crosses both
		ev := r.waitFor(t, "threshold after kill -9")
		if ev.Type != notify.TypeThreshold || ev.Percent != pct || ev.Account != "alice@example.com" {
			t.Fatalf("got %+v, want the %d %% event", ev, pct)
		}
	}
	td.stop()
	r.check(t)
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.events) != 2 {
		t.Fatalf("receiver got %d events, want 2", len(r.events))
	}
}

// serveUntilKilled is the child of the kill -9 test: the daemon on cfg,
// with the real clock, until SIGKILL.
func serveUntilKilled(cfgPath string) {
	cfg, err := config.Load(cfgPath, nil)
	if err != nil {
		fmt.Println("config:", err)
		os.Exit(1)
	}
	if _, err := Start(cfg, Options{Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))}); err != nil {
		fmt.Println("start:", err)
		os.Exit(1)
	}
	fmt.Println("ready")
	select {}
}
