package milter

import (
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gomilter "github.com/d--j/go-milter"

	"github.com/relaycap/relaycap/quota"
	"github.com/relaycap/relaycap/quota/badgerstore"
)

// TestPanicInCallbackTempfailsOnlyThatConnection makes the sealer panic at
// end of message: the client must get a temporary failure, the
// reservations must be released, and the next connection must be served.
func TestPanicInCallbackTempfailsOnlyThatConnection(t *testing.T) {
	store, err := badgerstore.Open(t.TempDir(), badgerstore.Options{HistoryDays: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	engine, _ := quota.NewEngine(store, quota.Settings{Location: time.UTC, DefaultDailyLimit: 2})
	var logs strings.Builder
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	srv := NewServer(engine, Settings{IDHeader: "X-Relay-ID", Seal: func(Stamp) (string, error) { panic("boom") }},
		Options{Logger: slog.New(slog.NewTextHandler(&logs, nil)), Now: func() time.Time { return now }})
	sock := filepath.Join(t.TempDir(), "m.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Close()

	transaction := func() (*gomilter.Action, error) {
		macros := gomilter.NewMacroBag()
		s, err := gomilter.NewClient("unix", sock, gomilter.WithActions(gomilter.OptAddHeader|gomilter.OptChangeHeader|gomilter.OptSetMacros)).Session(macros)
		if err != nil {
			return nil, err
		}
		defer s.Close()
		s.Conn("c", gomilter.FamilyInet, 1, "192.0.2.1")
		s.Helo("c")
		macros.Set(gomilter.MacroAuthAuthen, "alice")
		s.Mail("<a@example.org>", "")
		if act, err := s.Rcpt("<b@example.net>", ""); err != nil || act.StopProcessing() {
			t.Fatalf("rcpt: %v %v", act, err)
		}
		s.DataStart()
		s.HeaderEnd()
		_, act, err := s.BodyReadFrom(strings.NewReader("x\r\n"))
		return act, err
	}
	for i := range 3 { // limit 2: a leaked reservation would refuse the third
		act, err := transaction()
		if err == nil && act.Type != gomilter.ActionTempFail {
			t.Fatalf("try %d: %v, want a temporary failure", i, act)
		}
		var d quota.Decision
		for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			if d, _ = engine.Check("alice", now); d.Reserved == 0 {
				break
			}
		}
		if d.Reserved != 0 || d.Used != 0 {
			t.Fatalf("try %d: after the panic %+v, want nothing held or counted", i, d)
		}
	}
	if !strings.Contains(logs.String(), "panic in milter callback") {
		t.Fatal("panic not logged")
	}
}
