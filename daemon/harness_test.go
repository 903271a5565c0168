package daemon

import (
	"bufio"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	gomilter "github.com/d--j/go-milter"

	"github.com/relaycap/relaycap/config"
	"github.com/relaycap/relaycap/idheader"
	"github.com/relaycap/relaycap/internal/syncutil"
	"github.com/relaycap/relaycap/quota"
)

// testDaemon is the serve wiring on unix sockets in a temp dir.
type testDaemon struct {
	*Daemon
	dir, cfgPath string
	logs         *syncutil.Buffer
	clock        *clock
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// writeConfig writes the YAML body over the common test settings and
// returns its path. A top-level section in body replaces the common one,
// except that the milter's listen address is always the test socket.
func writeConfig(t testing.TB, dir, body string) string {
	t.Helper()
	common := []string{
		fmt.Sprintf("state_dir: %s/state", dir),
		fmt.Sprintf("policy: {listen: \"unix:%s/policy.sock\"}", dir),
		fmt.Sprintf("id_header: {name: X-Relay-ID, keys_file: %s/id.keys, extra: {X-Report-Abuse-To: \"abuse@example.net\"}}", dir),
		"store: {sync_writes: false}",
		"log: {level: debug}",
	}
	milter := fmt.Sprintf("milter: {listen: \"unix:%s/milter.sock\"}\n", dir)
	if rest, ok := strings.CutPrefix(body, "milter: {"); ok {
		first, others, _ := strings.Cut(rest, "\n")
		milter = fmt.Sprintf("milter: {listen: \"unix:%s/milter.sock\", %s\n", dir, first)
		body = others
	}
	var b strings.Builder
	b.WriteString(milter)
	for _, line := range common {
		key, _, _ := strings.Cut(line, ":")
		if !strings.HasPrefix(body, key+":") && !strings.Contains(body, "\n"+key+":") {
			b.WriteString(line + "\n")
		}
	}
	b.WriteString(body)
	path := filepath.Join(dir, "relaycap.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// startDaemon starts the wiring of `relaycap serve` with the config body.
func startDaemon(t testing.TB, body string) *testDaemon {
	t.Helper()
	dir := t.TempDir()
	if _, err := idheader.Keygen(filepath.Join(dir, "id.keys"), rand.Reader); err != nil {
		t.Fatal(err)
	}
	td := &testDaemon{dir: dir, cfgPath: writeConfig(t, dir, body), logs: &syncutil.Buffer{}, clock: &clock{}}
	td.clock.set(time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC))
	td.start(t)
	return td
}

func (td *testDaemon) start(t testing.TB) {
	t.Helper()
	cfg, err := config.Load(td.cfgPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(td.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	d, err := Start(cfg, Options{Logger: log, Now: td.clock.now})
	if err != nil {
		t.Fatal(err)
	}
	td.Daemon = d
	t.Cleanup(func() {
		td.stop()
		if t.Failed() {
			t.Logf("relaycap log:\n%s", td.logs.String())
		}
	})
}

func (td *testDaemon) stop() {
	if td.Daemon == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	td.Shutdown(ctx)
	td.Daemon = nil
}

func (td *testDaemon) reload(t testing.TB, body string) {
	t.Helper()
	writeConfig(t, td.dir, body)
	cfg, err := config.Load(td.cfgPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := td.Reload(cfg); err != nil {
		t.Fatal(err)
	}
}

// session is one SMTP connection as Postfix presents it to the milter,
// driven by go-milter's own client.
type session struct {
	t      testing.TB
	s      *gomilter.ClientSession
	macros *gomilter.MacroBag
	open   bool // a transaction is open: Postfix aborts it before the next MAIL
}

func (td *testDaemon) milterSession(t testing.TB) *session {
	t.Helper()
	macros := gomilter.NewMacroBag()
	c := gomilter.NewClient("unix", filepath.Join(td.dir, "milter.sock"),
		gomilter.WithActions(gomilter.OptAddHeader|gomilter.OptChangeHeader|gomilter.OptSetMacros),
		gomilter.WithReadTimeout(5*time.Second))
	s, err := c.Session(macros)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if act, err := s.Conn("client.example", gomilter.FamilyInet, 40000, "192.0.2.7"); err != nil || act.StopProcessing() {
		t.Fatalf("connect: %v %v", act, err)
	}
	if act, err := s.Helo("client.example"); err != nil || act.StopProcessing() {
		t.Fatalf("helo: %v %v", act, err)
	}
	return &session{t: t, s: s, macros: macros}
}

// mail starts a transaction for login ("" = unauthenticated).
func (s *session) mail(login string) *gomilter.Action {
	s.t.Helper()
	if s.open {
		if err := s.s.Abort(nil); err != nil {
			s.t.Fatal(err)
		}
	}
	s.open = true
	s.macros.Set(gomilter.MacroAuthAuthen, login)
	if login != "" {
		s.macros.Set(gomilter.MacroAuthType, "PLAIN")
	}
	act, err := s.s.Mail("<sender@example.org>", "")
	if err != nil {
		s.t.Fatal(err)
	}
	return act
}

// rcpts sends n recipients and returns the replies of the refused ones.
func (s *session) rcpts(n int) (accepted int, refused []string) {
	s.t.Helper()
	for i := range n {
		if i > 0 {
			s.macros.Set(gomilter.MacroQueueId, "4QUEUEID")
		}
		act, err := s.s.Rcpt(fmt.Sprintf("<r%d@example.net>", i), "")
		if err != nil {
			s.t.Fatal(err)
		}
		if act.StopProcessing() {
			refused = append(refused, act.SMTPReply)
		} else {
			accepted++
		}
	}
	return accepted, refused
}

// data sends the headers and the end of message; it returns the header
// modifications and the final action.
func (s *session) data(headers [][2]string) ([]gomilter.ModifyAction, *gomilter.Action) {
	s.t.Helper()
	s.macros.Set(gomilter.MacroQueueId, "4QUEUEID")
	if act, err := s.s.DataStart(); err != nil || act.StopProcessing() {
		s.t.Fatalf("data: %v %v", act, err)
	}
	for _, h := range headers {
		if _, err := s.s.HeaderField(h[0], h[1], nil); err != nil {
			s.t.Fatal(err)
		}
	}
	if _, err := s.s.HeaderEnd(); err != nil {
		s.t.Fatal(err)
	}
	mods, act, err := s.s.BodyReadFrom(strings.NewReader("Hello.\r\n"))
	if err != nil {
		s.t.Fatal(err)
	}
	s.open = false
	return mods, act
}

var plainHeaders = [][2]string{{"From", "a@example.org"}, {"To", "b@example.net"}, {"Message-ID", "<m1@example.org>"}}

// policyConn speaks the raw policy protocol.
type policyConn struct {
	t testing.TB
	c net.Conn
	r *bufio.Reader
}

func (td *testDaemon) policyConn(t testing.TB) *policyConn {
	t.Helper()
	c, err := net.Dial("unix", filepath.Join(td.dir, "policy.sock"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &policyConn{t: t, c: c, r: bufio.NewReader(c)}
}

// ask sends one raw request block and returns the action.
func (p *policyConn) ask(block string) string {
	p.t.Helper()
	p.c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(p.c, block); err != nil {
		p.t.Fatal(err)
	}
	line, err := p.r.ReadString('\n')
	if err != nil {
		p.t.Fatalf("policy reply: %v", err)
	}
	if blank, _ := p.r.ReadString('\n'); blank != "\n" {
		p.t.Fatalf("policy reply not ended by an empty line: %q", blank)
	}
	return strings.TrimSuffix(strings.TrimPrefix(line, "action="), "\n")
}

func rcptRequest(login string) string {
	return "request=smtpd_access_policy\nprotocol_state=RCPT\nprotocol_name=ESMTP\n" +
		"client_address=192.0.2.7\nsasl_method=PLAIN\nsasl_username=" + login +
		"\nsender=a@example.org\nrecipient=b@example.net\nrecipient_count=0\nqueue_id=\ninstance=1.2.3\n\n"
}

// decision returns the key=value pairs of the last decision line for
// account in the log, or nil.
func decision(logs, account string) map[string]string {
	var last map[string]string
	for _, line := range strings.Split(logs, "\n") {
		if !strings.Contains(line, " msg=decision ") || !strings.Contains(line, " account="+account+" ") {
			continue
		}
		kv := map[string]string{}
		for _, f := range strings.Fields(line) {
			if k, v, ok := strings.Cut(f, "="); ok {
				kv[k] = v
			}
		}
		last = kv
	}
	return last
}

// wantDecision checks the last decision line for account.
func wantDecision(t testing.TB, logs, account string, want map[string]string) {
	t.Helper()
	got := decision(logs, account)
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("decision line for %s: %s=%q, want %q (line %v)", account, k, got[k], v, got)
		}
	}
}

// check asks the running engine about login at the test clock's time and
// fails the test on an error, so no assertion reads a zero Decision.
func (td *testDaemon) check(t testing.TB, login string) quota.Decision {
	t.Helper()
	d, err := td.Engine().Check(context.Background(), login, td.clock.now())
	if err != nil {
		t.Fatalf("check %s: %v", login, err)
	}
	return d
}

func removeFile(path string) error { return os.Remove(path) }
