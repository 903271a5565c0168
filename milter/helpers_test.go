package milter

import (
	"context"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gomilter "github.com/d--j/go-milter"

	"github.com/relaycap/relaycap/internal/syncutil"
	"github.com/relaycap/relaycap/quota"
	"github.com/relaycap/relaycap/quota/badgerstore"
)

var testNow = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

// serve starts a milter server over an engine on store (a Badger store in
// a temp dir if nil) and returns its socket, engine and log.
func serve(t testing.TB, store stores, set Settings) (sock string, engine *quota.Engine, logs *syncutil.Buffer) {
	t.Helper()
	if store == nil {
		bs, err := badgerstore.Open(t.TempDir(), badgerstore.Options{HistoryDays: 1})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { bs.Close() })
		store = bs
	}
	engine, err := quota.NewEngine(quota.NewLocal(store, time.Hour), store, quota.Settings{Location: time.UTC, DefaultDailyLimit: 2, HoldTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	logs = &syncutil.Buffer{}
	srv := NewServer(engine, set, Options{Logger: slog.New(slog.NewTextHandler(logs, nil)), Now: func() time.Time { return testNow }})
	sock = filepath.Join(t.TempDir(), "m.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return sock, engine, logs
}

// transaction sends one message from alice with one recipient, as Postfix
// does, and returns the RCPT and the final actions.
func transaction(t *testing.T, sock string) (rcpt, final *gomilter.Action, err error) {
	t.Helper()
	macros := gomilter.NewMacroBag()
	s, err := gomilter.NewClient("unix", sock, gomilter.WithActions(gomilter.OptAddHeader|gomilter.OptChangeHeader|gomilter.OptSetMacros)).Session(macros)
	if err != nil {
		return nil, nil, err
	}
	defer s.Close()
	s.Conn("c", gomilter.FamilyInet, 1, "192.0.2.1")
	s.Helo("c")
	macros.Set(gomilter.MacroAuthAuthen, "alice")
	s.Mail("<a@example.org>", "")
	if rcpt, err = s.Rcpt("<b@example.net>", ""); err != nil || rcpt.StopProcessing() {
		return rcpt, nil, err
	}
	s.DataStart()
	s.HeaderEnd()
	_, final, err = s.BodyReadFrom(strings.NewReader("x\r\n"))
	return rcpt, final, err
}

// waitIdle waits until the engine holds no reservation for alice and
// returns that decision; an error from the engine fails the test, so no
// "nothing held or counted" check can pass on a zero Decision.
func waitIdle(t *testing.T, engine *quota.Engine) quota.Decision {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		d := check(t, engine)
		if d.Reserved == 0 || time.Now().After(deadline) {
			return d
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// check asks the engine about alice at testNow; an error fails the test.
func check(t *testing.T, engine *quota.Engine) quota.Decision {
	t.Helper()
	d, err := engine.Check(context.Background(), "alice", testNow)
	if err != nil {
		t.Fatalf("check alice: %v", err)
	}
	return d
}

// stores is what a test engine runs over: usage and accounts, from one
// Badger store or a wrapper of one.
type stores interface {
	quota.Store
	quota.Accounts
}
