package admin

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	_ "time/tzdata"

	"github.com/relaycap/relaycap/internal/syncutil"
	"github.com/relaycap/relaycap/quota"
	"github.com/relaycap/relaycap/quota/badgerstore"
)

var newYork = func() *time.Location {
	loc, err := time.LoadLocation("America/New_York")
	if err != nil {
		panic(err)
	}
	return loc
}()

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// testAPI is an admin server over a Badger store on a unix socket in a
// temp dir, with a client for it.
type testAPI struct {
	*Client
	sock   string
	srv    *Server
	engine *quota.Engine
	store  *badgerstore.Store
	clock  *clock
	logs   *syncutil.Buffer
}

var ctx = context.Background()

// startAPI serves the API; file holds the file-managed accounts.
func startAPI(t testing.TB, file map[string]quota.Account) *testAPI {
	t.Helper()
	return startAPISync(t, file, false)
}

// startAPISync is startAPI with the store's fsync on every commit set.
func startAPISync(t testing.TB, file map[string]quota.Account, sync bool) *testAPI {
	t.Helper()
	dir := t.TempDir()
	store, err := badgerstore.Open(filepath.Join(dir, "state"), badgerstore.Options{HistoryDays: 30, SyncWrites: sync})
	if err != nil {
		t.Fatal(err)
	}
	var accts quota.FileAccountsBuilder
	for name, a := range file {
		accts.Add([]byte(name), a.DailyLimit, a.Status, a.DryRun)
	}
	tab, _ := accts.Build()
	engine, err := quota.NewEngine(quota.NewLocal(store, time.Minute), store, quota.Settings{HoldTTL: time.Hour, Location: newYork, Accounts: tab})
	if err != nil {
		t.Fatal(err)
	}
	a := &testAPI{engine: engine, store: store, logs: &syncutil.Buffer{}, clock: &clock{}}
	a.clock.set(time.Date(2026, 11, 27, 15, 0, 0, 0, newYork))
	a.srv = NewServer(Options{Engine: engine, Accounts: store, Now: a.clock.now, ConfigPath: "/etc/relaycap/relaycap.yaml",
		Logger: slog.New(slog.NewTextHandler(a.logs, nil))})
	a.sock = filepath.Join(dir, "admin.sock")
	ln, err := net.Listen("unix", a.sock)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.srv.Serve(ln) }()
	t.Cleanup(func() {
		a.srv.Shutdown(ctx)
		if err := <-done; err != ErrServerClosed {
			t.Errorf("Serve: %v", err)
		}
		store.Close()
		if t.Failed() {
			t.Logf("admin log:\n%s", a.logs.String())
		}
	})
	if a.Client, err = NewClient("unix:"+a.sock, ""); err != nil {
		t.Fatal(err)
	}
	return a
}

// raw sends one request over the socket and returns status and body.
func (a *testAPI) raw(t testing.TB, method, path, body string) (int, string) {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", a.sock)
	}}}
	req, err := http.NewRequest(method, "http://relaycap"+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s %s: Content-Type %q, want application/json", method, path, ct)
	}
	return resp.StatusCode, strings.TrimSpace(string(b))
}

func (a *testAPI) create(t testing.TB, name string, limit int64) Account {
	t.Helper()
	acct, err := a.PutAccount(ctx, name, AccountRequest{DailyLimit: &limit})
	if err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	return acct
}

// commit counts n relays of login through the engine, as the milter does.
func (a *testAPI) commit(t testing.TB, login string, n int) {
	t.Helper()
	var txn quota.Txn
	for range n {
		if d, err := a.engine.Reserve(context.Background(), &txn, login, a.clock.now()); err != nil || !d.Allowed() {
			t.Fatalf("reserve for %s: %v, %v", login, d.Verdict, err)
		}
	}
	if _, err := a.engine.Commit(context.Background(), &txn, a.clock.now()); err != nil {
		t.Fatal(err)
	}
}

// wantAPIError checks err is the daemon's answer with status and code.
func wantAPIError(t testing.TB, what string, err error, status int, code string) *APIError {
	t.Helper()
	ae, ok := err.(*APIError)
	if !ok || ae.Status != status || ae.Code != code {
		t.Fatalf("%s: %v (%#v), want %d %s", what, err, err, status, code)
	}
	return ae
}
