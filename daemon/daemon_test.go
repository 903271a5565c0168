package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	gomilter "github.com/d--j/go-milter"

	"github.com/relaycap/relaycap/config"
	"github.com/relaycap/relaycap/quota/badgerstore"
)

func TestPartialAcceptance(t *testing.T) {
	td := startDaemon(t, "quota: {accounts: {alice@example.com: 5}}\n")
	s := td.milterSession(t)
	if act := s.mail("alice@example.com"); act.StopProcessing() {
		t.Fatalf("mail: %v", act)
	}
	accepted, refused := s.rcpts(7)
	if accepted != 5 || len(refused) != 2 {
		t.Fatalf("accepted %d, refused %v; want 5 and 2", accepted, refused)
	}
	for _, r := range refused {
		if !strings.HasPrefix(r, "450 4.7.1 ") || !strings.Contains(r, "5/5 used") || !strings.Contains(r, "resets at 2026-11-28 00:00 EST") {
			t.Errorf("refusal %q", r)
		}
	}
	if _, act := s.data(plainHeaders); act.Type != gomilter.ActionAccept {
		t.Fatalf("end of message: %v, want accept", act)
	}
	wantDecision(t, td.logs.String(), "alice@example.com", map[string]string{
		"queue_id": "4QUEUEID", "accepted": "5", "refused": "2", "used": "5", "limit": "5", "result": "accept",
	})
}

func TestAbortAndCloseRelease(t *testing.T) {
	td := startDaemon(t, "quota: {accounts: {alice: 3}}\n")
	s := td.milterSession(t)
	s.mail("alice")
	if n, _ := s.rcpts(3); n != 3 {
		t.Fatalf("accepted %d of 3", n)
	}
	if err := s.s.Abort(nil); err != nil {
		t.Fatal(err)
	}
	s.mail("alice")
	if n, _ := s.rcpts(3); n != 3 {
		t.Fatalf("after abort: accepted %d of 3, want all (released)", n)
	}
	s.s.Close() // connection lost with 3 reserved
	waitFor(t, "reservations released after close", func() bool {
		d, err := td.Engine().Check(context.Background(), "alice", td.clock.now())
		return err == nil && d.Reserved == 0
	})
	if d := td.check(t, "alice"); d.Used != 0 {
		t.Fatalf("nothing was committed, used = %d", d.Used)
	}
}

func TestPolicyAndMilterAgree(t *testing.T) {
	td := startDaemon(t, `quota:
  default_daily_limit: 0
  accounts:
    alice: 2
    bob: {daily_limit: 10, status: suspended}
    carol: {daily_limit: 10, status: terminated}
`)
	p := td.policyConn(t)
	if a := p.ask(rcptRequest("alice")); a != "DUNNO" {
		t.Fatalf("fresh account: %q", a)
	}
	s := td.milterSession(t)
	s.mail("alice")
	s.rcpts(2) // held, not yet committed
	if a := p.ask(rcptRequest("alice")); !strings.HasPrefix(a, "DEFER_IF_PERMIT 4.7.1 Daily relay quota of alice exhausted (2/2 used)") {
		t.Fatalf("reservations must count for the policy: %q", a)
	}
	if _, refused := s.rcpts(1); len(refused) != 1 || !strings.HasPrefix(refused[0], "450 4.7.1") {
		t.Fatalf("milter: %v", refused)
	}
	s.data(plainHeaders)
	for login, want := range map[string]string{
		"bob":     "REJECT 5.7.1 Account bob is suspended",
		"carol":   "REJECT 5.7.1 Account carol is terminated",
		"mallory": "REJECT 5.7.1 Account mallory has no relay quota",
		"":        "DUNNO",
	} {
		if a := p.ask(rcptRequest(login)); a != want {
			t.Errorf("policy for %q: %q, want %q", login, a, want)
		}
		s.mail(login)
		_, refused := s.rcpts(1)
		if login == "" {
			if len(refused) != 0 {
				t.Errorf("unauthenticated mail refused by milter: %v", refused)
			}
			continue
		}
		if len(refused) != 1 || !strings.HasPrefix(refused[0], "550 5.7.1 "+strings.TrimPrefix(want, "REJECT 5.7.1 ")) {
			t.Errorf("milter for %q: %v", login, refused)
		}
	}
	other := strings.Replace(rcptRequest("alice"), "protocol_state=RCPT", "protocol_state=END-OF-MESSAGE", 1)
	if a := p.ask(other); a != "DUNNO" {
		t.Errorf("END-OF-MESSAGE state: %q", a)
	}
	td.reload(t, "quota: {over_quota: reject, accounts: {alice: 2}}\n")
	if a := p.ask(rcptRequest("alice")); !strings.HasPrefix(a, "REJECT 5.7.1 Daily relay quota") {
		t.Errorf("over_quota reject, policy: %q", a)
	}
	s.mail("alice")
	if _, refused := s.rcpts(1); len(refused) != 1 || !strings.HasPrefix(refused[0], "550 5.7.1 Daily relay quota") {
		t.Errorf("over_quota reject, milter: %v", refused)
	}
}

func TestConcurrentSessionsNeverExceedLimit(t *testing.T) {
	td := startDaemon(t, "quota: {accounts: {alice: 50}}\n")
	var accepted atomic.Int64
	// Parallel subtests, so that each session may fail its own test; the
	// group returns when all 20 are done.
	t.Run("sessions", func(t *testing.T) {
		for i := range 20 {
			t.Run(fmt.Sprint(i), func(t *testing.T) {
				t.Parallel()
				s := td.milterSession(t)
				s.mail("alice")
				n, _ := s.rcpts(5)
				accepted.Add(int64(n))
				if n > 0 {
					if _, act := s.data(plainHeaders); act.Type != gomilter.ActionAccept {
						t.Errorf("eom: %v", act)
					}
				}
			})
		}
	})
	d, err := td.Engine().Check(context.Background(), "alice", td.clock.now())
	if err != nil {
		t.Fatal(err)
	}
	if accepted.Load() != 50 || d.Used != 50 {
		t.Fatalf("100 recipients against limit 50: accepted %d, committed %d", accepted.Load(), d.Used)
	}
}

func TestRestartKeepsUsage(t *testing.T) {
	td := startDaemon(t, "quota: {accounts: {alice: 5}}\n")
	s := td.milterSession(t)
	s.mail("alice")
	s.rcpts(3)
	s.data(plainHeaders)
	s.s.Close()
	td.stop()
	td.start(t)
	s = td.milterSession(t)
	s.mail("alice")
	if n, refused := s.rcpts(5); n != 2 || len(refused) != 3 {
		t.Fatalf("after restart: accepted %d, refused %d; want 2 and 3", n, len(refused))
	}
}

func TestSecondDaemonOnSameStateFails(t *testing.T) {
	td := startDaemon(t, "")
	other := t.TempDir()
	cfg := td.Config()
	cfg2 := *cfg
	cfg2.Milter.Listen, cfg2.Policy.Listen = "unix:"+other+"/m.sock", "unix:"+other+"/p.sock"
	_, err := Start(&cfg2, Options{})
	if err == nil || !strings.Contains(err.Error(), "in use by another process") {
		t.Fatalf("second daemon: %v", err)
	}
}

// TestLowDiskRefusesToStart: below store.min_free_mb the daemon does not
// open the store (Badger would write its memtables there) and says why.
func TestLowDiskRefusesToStart(t *testing.T) {
	dir := t.TempDir()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	cfg := config.Defaults()
	cfg.StateDir = filepath.Join(dir, "state")
	cfg.Milter.Listen, cfg.Policy.Listen = "unix:"+dir+"/m.sock", "unix:"+dir+"/p.sock"
	cfg.Store.MinFreeMB = int64(st.Bavail*uint64(st.Bsize)>>20) + 1<<20 // 1 TiB more than there is
	d, err := Start(cfg, Options{Logger: slog.New(slog.DiscardHandler)})
	if err == nil {
		d.Shutdown(context.Background())
		t.Fatal("daemon started on a disk below store.min_free_mb")
	}
	if !errors.Is(err, badgerstore.ErrLowSpace) || !strings.Contains(err.Error(), cfg.StateDir) {
		t.Fatalf("start: %v, want ErrLowSpace naming %s", err, cfg.StateDir)
	}
}

func TestBadPolicyRequestsCloseTheConnection(t *testing.T) {
	td := startDaemon(t, "quota: {accounts: {alice: 5}}\n")
	for name, block := range map[string]string{
		"no equals":      "protocol_state=RCPT\ngarbage line\n\n",
		"too many":       strings.Repeat("x=1\n", 101) + "\n",
		"oversized":      "sasl_username=" + strings.Repeat("a", 17<<10) + "\n\n",
		"nul":            "sasl_username=a\x00b\n\n",
		"empty request":  "\n",
		"binary garbage": "\x00\x01\x02\xff\n\n",
	} {
		p := td.policyConn(t)
		p.c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(p.c, block)
		b, err := io.ReadAll(p.c)
		if err != nil || len(b) != 0 {
			t.Errorf("%s: got %q, %v; want the connection closed without a reply", name, b, err)
		}
	}
	if a := td.policyConn(t).ask(rcptRequest("alice")); a != "DUNNO" {
		t.Fatalf("service after bad requests: %q", a)
	}
	if !strings.Contains(td.logs.String(), "bad request") {
		t.Error("bad requests were not logged")
	}
}

func TestBrokenMilterPacketKeepsServing(t *testing.T) {
	td := startDaemon(t, "quota: {accounts: {alice: 5}}\n")
	c, err := net.Dial("unix", filepath.Join(td.dir, "milter.sock"))
	if err != nil {
		t.Fatal(err)
	}
	// A length prefix of 2 GB, then junk: not a milter packet.
	c.Write([]byte{0x7f, 0xff, 0xff, 0xff, 'O', 1, 2, 3})
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(c); err != nil && !errors.Is(err, net.ErrClosed) {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatal("broken packet: connection left open")
		}
	}
	c.Close()
	s := td.milterSession(t)
	s.mail("alice")
	if n, _ := s.rcpts(1); n != 1 {
		t.Fatal("milter stopped serving after a broken packet")
	}
}

func TestUnauthenticated(t *testing.T) {
	td := startDaemon(t, "quota: {accounts: {alice: 5}}\n")
	s := td.milterSession(t)
	if act := s.mail(""); act.StopProcessing() {
		t.Fatalf("unauthenticated: accept by default, got %v", act)
	}
	if n, _ := s.rcpts(3); n != 3 {
		t.Fatalf("unauthenticated recipients refused: %d of 3 accepted", n)
	}
	mods, act := s.data(plainHeaders)
	if act.Type != gomilter.ActionAccept || len(mods) != 0 {
		t.Fatalf("unauthenticated message: %v, mods %v; want untouched accept", act, mods)
	}
	td2 := startDaemon(t, "milter: {unauthenticated: reject}\nquota: {accounts: {alice: 5}}\n")
	s = td2.milterSession(t)
	if act := s.mail(""); act.SMTPCode != 530 || !strings.HasPrefix(act.SMTPReply, "530 5.7.0") {
		t.Fatalf("unauthenticated with reject: %v", act)
	}
	if act := s.mail("alice"); act.StopProcessing() {
		t.Fatalf("authenticated with reject: %v", act)
	}
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if ok() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

// TestReloadKeepsTheZone: switching the zone mid-day would start a fresh
// day and a fresh quota at once, so a reload keeps the running zone.
func TestReloadKeepsTheZone(t *testing.T) {
	td := startDaemon(t, "quota: {accounts: {alice: 1}}\n")
	td.clock.set(time.Date(2026, 11, 28, 1, 0, 0, 0, time.UTC)) // 20:00 EST on the 27th
	s := td.milterSession(t)
	s.mail("alice")
	s.rcpts(1)
	s.data(plainHeaders)
	td.reload(t, "quota: {timezone: UTC, accounts: {alice: 1}}\n")
	if d := td.check(t, "alice"); d.Allowed() || d.Day != "2026-11-27" {
		t.Fatalf("after a reload naming another zone: %v on %s, want the running zone's day, used up", d.Verdict, d.Day)
	}
	if !strings.Contains(td.logs.String(), "setting=quota.timezone") {
		t.Fatal("the ignored zone change was not logged")
	}
}

// TestShutdownReleasesOpenTransactions: SIGTERM with a message in flight
// past the drain time: the daemon stops, the reservations are released,
// nothing is counted, and the decision line says so.
func TestShutdownReleasesOpenTransactions(t *testing.T) {
	td := startDaemon(t, "quota: {accounts: {alice: 5}}\n")
	s := td.milterSession(t)
	s.mail("alice")
	s.rcpts(2)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := td.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	td.Daemon = nil
	wantDecision(t, td.logs.String(), "alice", map[string]string{"result": "connection_lost", "accepted": "0", "refused": "2"})
	td.start(t)
	if d := td.check(t, "alice"); d.Used != 0 {
		t.Fatalf("after the restart: %+v, want nothing counted", d)
	}
}

// TestPolicyReadTimeoutComesFromTheConfig: the policy server has no idle
// timeout of its own; the daemon gives it policy.read_timeout, so an idle
// Postfix connection is closed after that.
func TestPolicyReadTimeoutComesFromTheConfig(t *testing.T) {
	t.Setenv("RELAYCAP_POLICY_READ_TIMEOUT", "200ms")
	td := startDaemon(t, "quota: {accounts: {alice: 1}}\n")
	p := td.policyConn(t)
	if a := p.ask(rcptRequest("alice")); a != "DUNNO" {
		t.Fatalf("first request: %q, want DUNNO", a)
	}
	p.c.SetDeadline(time.Now().Add(30 * time.Second)) // far beyond 200ms
	if _, err := p.r.ReadByte(); !errors.Is(err, io.EOF) {
		t.Fatalf("idle connection: %v, want it closed by relaycap (EOF)", err)
	}
}

// TestReloadKeepsRestartOnlySettings: store and quota.history_days are
// opened once (Badger's options, the usage TTL); a reload that changes them
// keeps the running values and says so, while the rest of the file applies.
func TestReloadKeepsRestartOnlySettings(t *testing.T) {
	td := startDaemon(t, "quota: {accounts: {alice: 1}}\n")
	running := td.Config()
	td.reload(t, "quota: {history_days: 30, accounts: {alice: 7}}\nstore: {sync_writes: true, min_free_mb: 1}\n")
	got := td.Config()
	if got.Quota.HistoryDays != running.Quota.HistoryDays || !reflect.DeepEqual(got.Store, running.Store) {
		t.Errorf("after the reload: history_days %d, store %+v; want the running %d, %+v",
			got.Quota.HistoryDays, got.Store, running.Quota.HistoryDays, running.Store)
	}
	for _, key := range []string{"quota.history_days", "store.sync_writes", "store.min_free_mb"} {
		if !strings.Contains(td.logs.String(), "setting="+key) {
			t.Errorf("the ignored change of %s was not logged", key)
		}
	}
	if d := td.check(t, "alice"); d.Limit != 7 {
		t.Errorf("the reload did not apply the new limit: %d, want 7", d.Limit)
	}
}
