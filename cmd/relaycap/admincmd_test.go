package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relaycap/relaycap/config"
	"github.com/relaycap/relaycap/daemon"
	"github.com/relaycap/relaycap/idheader"
	"github.com/relaycap/relaycap/internal/syncutil"
)

// cliDaemon is the serve wiring in process, on sockets in a temp dir, with
// the config file the CLI finds it through.
type cliDaemon struct {
	cfgPath, keys string
	d             *daemon.Daemon
}

func startCLIDaemon(t *testing.T, extra string) *cliDaemon {
	t.Helper()
	dir := t.TempDir()
	keys := filepath.Join(dir, "id.keys")
	if _, err := idheader.Keygen(keys, rand.Reader); err != nil {
		t.Fatal(err)
	}
	body := fmt.Sprintf("state_dir: %s/state\nmilter: {listen: \"unix:%[1]s/m.sock\"}\npolicy: {listen: \"unix:%[1]s/p.sock\"}\n"+
		"id_header: {keys_file: %s}\nstore: {sync_writes: false}\n%s", dir, keys, extra)
	cfgPath := filepath.Join(dir, "relaycap.yaml")
	if err := os.WriteFile(cfgPath, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(cfgPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncutil.Buffer{}
	d, err := daemon.Start(cfg, daemon.Options{Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		d.Shutdown(ctx)
		if t.Failed() {
			t.Logf("daemon log:\n%s", logs.String())
		}
	})
	return &cliDaemon{cfgPath: cfgPath, keys: keys, d: d}
}

// run executes "relaycap ARGS --config <the daemon's>" as main does and
// returns stdout, stderr and the exit code.
func (c *cliDaemon) run(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	return runAdminCLI(t, stdin, append(args, "--config", c.cfgPath)...)
}

func runAdminCLI(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	root := newRootCommand()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetIn(strings.NewReader(stdin))
	root.SetArgs(args)
	code := 0
	if err := root.Execute(); err != nil {
		code = exitCode(err)
		if strings.Contains(err.Error(), "\n") {
			t.Errorf("%v: the reason is not one line: %q", args, err)
		}
		fmt.Fprintln(&errOut, "relaycap:", err)
	}
	return out.String(), errOut.String(), code
}

func wantRun(t *testing.T, what string, out, errOut string, code, wantCode int, wantOut ...string) {
	t.Helper()
	if code != wantCode {
		t.Fatalf("%s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", what, code, wantCode, out, errOut)
	}
	for _, w := range wantOut {
		if !strings.Contains(out+errOut, w) {
			t.Fatalf("%s: output lacks %q\nstdout:\n%s\nstderr:\n%s", what, w, out, errOut)
		}
	}
}

func TestAccountCommands(t *testing.T) {
	c := startCLIDaemon(t, "quota: {accounts: {filed@example.com: 9}}\n")
	out, e, code := c.run(t, "", "account", "set", "alice@example.com", "--daily-limit", "10", "--note", "plan S")
	wantRun(t, "set", out, e, code, 0, "account:      alice@example.com", "daily limit:  10", "hour limit:   default", "dry run:      false", "status:       active", "note:         plan S")
	out, e, code = c.run(t, "", "account", "set", "alice@example.com", "--hourly-limit", "4", "--dry-run=true")
	wantRun(t, "set the hourly limit and dry run", out, e, code, 0, "daily limit:  10", "hour limit:   4", "dry run:      true", "note:         plan S")
	out, e, code = c.run(t, "", "account", "set", "alice@example.com", "--hourly-limit", "-1")
	wantRun(t, "negative hourly limit", out, e, code, 2, "--hourly-limit must not be negative")
	out, e, code = c.run(t, "", "account", "set", "alice@example.com", "--dry-run=false")
	wantRun(t, "dry run off", out, e, code, 0, "hour limit:   4", "dry run:      false")
	out, e, code = c.run(t, "", "account", "purchase", "alice@example.com", "5", "--purchase-id", "inv-1")
	wantRun(t, "purchase", out, e, code, 0, "purchase inv-1: 5 relays per day from now on for alice@example.com", "daily limit 15")
	out, e, code = c.run(t, "", "account", "purchase", "alice@example.com", "5", "--purchase-id", "inv-1")
	wantRun(t, "purchase replay", out, e, code, 0, "(replay: already recorded, nothing added)", "daily limit 15")
	out, e, code = c.run(t, "", "account", "purchase", "alice@example.com", "7", "--purchase-id", "inv-1")
	wantRun(t, "same id, other N", out, e, code, 1, "purchase id already used for a different purchase", "(purchase_conflict)")
	out, e, code = c.run(t, "", "account", "purchase", "alice@example.com", "3", "--purchase-id", "top-1", "--today-only")
	wantRun(t, "top-up", out, e, code, 0, "3 relays for ", " only for alice@example.com", "daily limit 15, limit of ")
	out, e, code = c.run(t, "", "account", "suspend", "alice@example.com", "--reason", "chargeback")
	wantRun(t, "suspend", out, e, code, 0, "status:       suspended")
	out, e, code = c.run(t, "", "account", "show", "alice@example.com")
	wantRun(t, "show", out, e, code, 0, "daily limit:  15 (+3 today only)", "limit 18, 0 remaining", "purchases (newest first):", "top-1", "inv-1",
		"audit (newest first):", "suspend", "15/active+3 → 15/suspended+3", "chargeback", fmt.Sprintf("uid=%d", os.Getuid()))
	out, e, code = c.run(t, "", "account", "list")
	wantRun(t, "list", out, e, code, 0, "alice@example.com  15 (+3 today only)  suspended  store", "filed@example.com  9                   active     file")
	out, e, code = c.run(t, "", "account", "list", "--status", "active", "--json")
	var listed []map[string]any
	if err := json.Unmarshal([]byte(out), &listed); err != nil || len(listed) != 1 || listed[0]["name"] != "filed@example.com" {
		t.Fatalf("list --status active --json: %v %s %s", err, out, e)
	}
	out, e, code = c.run(t, "", "account", "suspend", "filed@example.com", "--reason", "x")
	wantRun(t, "file-managed", out, e, code, 1, "is managed in "+c.cfgPath, "(file_managed)")
	out, e, code = c.run(t, "", "account", "terminate", "alice@example.com", "--reason", "spam")
	wantRun(t, "terminate", out, e, code, 0, "status:       terminated")
	out, e, code = c.run(t, "", "account", "resume", "alice@example.com", "--reason", "oops")
	wantRun(t, "resume terminated", out, e, code, 1, "account is terminated: it can only be deleted (terminated)")
	out, e, code = c.run(t, "", "account", "delete", "alice@example.com")
	wantRun(t, "delete", out, e, code, 0, "deleted alice@example.com")
	out, e, code = c.run(t, "", "account", "show", "alice@example.com")
	wantRun(t, "show deleted", out, e, code, 1, "no such account", "(not_found)")
}

func TestAccountUsageErrors(t *testing.T) {
	c := startCLIDaemon(t, "")
	for _, args := range [][]string{
		{"account", "set", "alice"},
		{"account", "set", "alice", "--daily-limit", "-1"},
		{"account", "purchase", "alice", "five", "--purchase-id", "x"},
		{"account", "purchase", "alice", "5"},
		{"account", "suspend", "alice"},
		{"account", "show"},
		{"account", "list", "extra"},
		{"account", "frobnicate"},
		{"usage"},
		{"usage", "alice", "--top", "3"},
		{"usage", "--top", "0"},
		{"abuse", "report"},
		{"abuse", "report", "-", "--suspend", "--terminate"},
	} {
		out, e, code := c.run(t, "", args...)
		wantRun(t, strings.Join(args, " "), out, e, code, 2)
	}
	out, e, code := runAdminCLI(t, "", "account", "show", "alice", "--admin", "tcp:nowhere")
	wantRun(t, "bad --admin", out, e, code, 2, "--admin")
}

func TestUsageCommand(t *testing.T) {
	c := startCLIDaemon(t, "")
	c.run(t, "", "account", "set", "alice", "--daily-limit", "10")
	out, e, code := c.run(t, "", "usage", "alice")
	wantRun(t, "usage", out, e, code, 0, "account:    alice", "used:       0", "limit:      10", "remaining:  10", "status:     active (store)", "resets at:  ")
	out, e, code = c.run(t, "", "usage", "alice", "--json")
	var u map[string]any
	if err := json.Unmarshal([]byte(out), &u); err != nil || u["limit"] != 10.0 || u["remaining"] != 10.0 {
		t.Fatalf("usage --json: %v %s %s", err, out, e)
	}
	out, e, code = c.run(t, "", "usage", "alice", "--days", "7")
	wantRun(t, "history", out, e, code, 0, "alice, ", "DAY", "total  0")
	out, e, code = c.run(t, "", "usage", "--top", "5")
	wantRun(t, "top", out, e, code, 0, "top accounts of ", "#  ACCOUNT  USED")
}

// TestNoDaemonIsOneLine: without a daemon every command says so on one
// line and exits 1.
func TestNoDaemonIsOneLine(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "admin.sock")
	out, e, code := runAdminCLI(t, "", "usage", "alice", "--admin", "unix:"+sock)
	wantRun(t, "no daemon", out, e, code, 1, "relaycap: relaycap is not running (nothing answers on unix:"+sock)
	if lines := strings.Count(strings.TrimSpace(e), "\n"); lines != 0 || out != "" {
		t.Fatalf("more than one line:\nstdout %q\nstderr %q", out, e)
	}
}

// complaint is an ARF-less bounce: the relayed message quoted whole, with
// the token sealed for its Message-ID.
func complaint(t *testing.T, keys, account, messageID, sealedFor string) string {
	t.Helper()
	ring, err := idheader.LoadKeyring(keys)
	if err != nil {
		t.Fatal(err)
	}
	token, err := ring.Seal(idheader.Fields{Account: account, Time: time.Date(2026, 11, 27, 18, 30, 0, 0, time.UTC),
		QueueID: "4ABCDEF123", ClientAddr: "192.0.2.7", Recipients: 2}, sealedFor)
	if err != nil {
		t.Fatal(err)
	}
	return "From: abuse@victim.example\r\nTo: abuse@relay.example\r\nSubject: spam from your network\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nStop it.\r\n" +
		"--b\r\nContent-Type: message/rfc822\r\n\r\nX-Relay-ID: " + token + "\r\nFrom: x@spammer.example\r\n" +
		"Message-ID: " + messageID + "\r\nSubject: buy now\r\n\r\nbuy\r\n--b--\r\n"
}

func TestAbuseReport(t *testing.T) {
	c := startCLIDaemon(t, "")
	c.run(t, "", "account", "set", "mallory@example.com", "--daily-limit", "100")
	msg := complaint(t, c.keys, "mallory@example.com", "<spam1@spammer.example>", "<spam1@spammer.example>")
	file := filepath.Join(t.TempDir(), "complaint.eml")
	if err := os.WriteFile(file, []byte(msg), 0o644); err != nil {
		t.Fatal(err)
	}
	out, e, code := c.run(t, "", "abuse", "report", file)
	wantRun(t, "report only", out, e, code, 0, "account:     mallory@example.com", "queue id:    4ABCDEF123", "client:      192.0.2.7",
		"2026-11-27 18:30:00 UTC", "(matches: sealed for this message)")
	if out, _, _ := c.run(t, "", "usage", "mallory@example.com"); !strings.Contains(out, "active") {
		t.Fatalf("a report without --suspend changed the account:\n%s", out)
	}
	out, e, code = c.run(t, msg, "abuse", "report", "-", "--suspend", "--reason", "spam trap hit")
	wantRun(t, "report --suspend", out, e, code, 0, "suspend mallory@example.com: now suspended")
	out, _, _ = c.run(t, "", "account", "show", "mallory@example.com")
	if !strings.Contains(out, "spam trap hit (abuse report: queue id 4ABCDEF123, sealed 2026-11-27T18:30:00Z, client 192.0.2.7)") {
		t.Fatalf("the audit lacks the reason with queue id and time:\n%s", out)
	}
}

func TestAbuseReportChangesNothingUnlessTheTokenIsGood(t *testing.T) {
	c := startCLIDaemon(t, "")
	c.run(t, "", "account", "set", "bob", "--daily-limit", "100")
	otherKeys := filepath.Join(t.TempDir(), "other.keys")
	if _, err := idheader.Keygen(otherKeys, rand.Reader); err != nil {
		t.Fatal(err)
	}
	forged := complaint(t, otherKeys, "bob", "<m@x>", "<m@x>")
	out, e, code := c.run(t, forged, "abuse", "report", "-", "--terminate")
	wantRun(t, "forged", out, e, code, 1, "does not open", "no X-Relay-ID header opened; nothing changed")
	copied := complaint(t, c.keys, "bob", "<other@x>", "<original@x>")
	out, e, code = c.run(t, copied, "abuse", "report", "-", "--terminate")
	wantRun(t, "copied", out, e, code, 1, "DOES NOT MATCH", "sealed for another message (copied): not acting")
	out, e, code = c.run(t, "Subject: hi\r\n\r\nno header\r\n", "abuse", "report", "-", "--suspend")
	wantRun(t, "no header", out, e, code, 1, "no X-Relay-ID header in -; nothing changed")
	// Without --suspend a report records a complaint; a forged one must not.
	out, e, code = c.run(t, forged, "abuse", "report", "-")
	wantRun(t, "forged, no action flag", out, e, code, 1, "no X-Relay-ID header opened; nothing changed")
	out, e, code = c.run(t, copied, "abuse", "report", "-")
	wantRun(t, "copied, no action flag", out, e, code, 0, "DOES NOT MATCH")
	out, e, code = c.run(t, "", "account", "show", "bob", "--json")
	var d struct {
		Account struct{ Status string }
		Audit   []struct{ Action string }
	}
	if err := json.Unmarshal([]byte(out), &d); err != nil || code != 0 {
		t.Fatalf("show bob: exit %d, %v\n%s%s", code, err, out, e)
	}
	if d.Account.Status != "active" || len(d.Audit) != 1 || d.Audit[0].Action != "create" {
		t.Fatalf("bad complaints changed bob: status %s, audit %+v", d.Account.Status, d.Audit)
	}
}

func TestAdminOverTCPWithTokenFile(t *testing.T) {
	dir := t.TempDir()
	token := filepath.Join(dir, "admin.token")
	if err := os.WriteFile(token, []byte("0123456789abcdef0123\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := "inet:" + ln.Addr().String()
	ln.Close()
	startCLIDaemon(t, fmt.Sprintf("admin: {listen_tcp: %q, token_file: %s}\n", addr, token))
	out, e, code := runAdminCLI(t, "", "account", "set", "alice", "--daily-limit", "3", "--admin", addr)
	wantRun(t, "without the token", out, e, code, 1, "missing or wrong bearer token (unauthorized)")
	out, e, code = runAdminCLI(t, "", "account", "set", "alice", "--daily-limit", "3", "--admin", addr, "--token-file", token)
	wantRun(t, "with the token", out, e, code, 0, "daily limit:  3")
	out, e, code = runAdminCLI(t, "", "account", "show", "alice", "--admin", addr, "--token-file", token)
	wantRun(t, "actor", out, e, code, 0, "token  create")
}

// TestServeRefusesAnOpenAdminTCP: `relaycap serve` with admin.listen_tcp
// and no token file, a missing one, or one others may read exits 2 (a
// config error systemd does not restart) and opens no listener.
func TestServeRefusesAnOpenAdminTCP(t *testing.T) {
	dir := t.TempDir()
	keys := filepath.Join(dir, "id.keys")
	if _, err := idheader.Keygen(keys, rand.Reader); err != nil {
		t.Fatal(err)
	}
	readable := filepath.Join(dir, "readable.token")
	if err := os.WriteFile(readable, []byte("0123456789abcdef0123\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(readable, 0o604); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct{ admin, want string }{
		"no token_file":   {`admin: {listen_tcp: "inet:127.0.0.1:0"}`, "admin.token_file"},
		"missing file":    {fmt.Sprintf(`admin: {listen_tcp: "inet:127.0.0.1:0", token_file: %s/none}`, dir), "admin.token_file"},
		"others may read": {fmt.Sprintf(`admin: {listen_tcp: "inet:127.0.0.1:0", token_file: %s}`, readable), "others may read it"},
	} {
		t.Run(name, func(t *testing.T) {
			sub := t.TempDir()
			cfg := filepath.Join(sub, "relaycap.yaml")
			body := fmt.Sprintf("state_dir: %[1]s/state\nmilter: {listen: \"unix:%[1]s/m.sock\"}\npolicy: {listen: \"unix:%[1]s/p.sock\"}\n"+
				"id_header: {keys_file: %s}\n%s\n", sub, keys, c.admin)
			if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
			out, e, code := runAdminCLI(t, "", "serve", "--config", cfg)
			wantRun(t, name, out, e, code, 2, c.want)
			if _, err := os.Stat(filepath.Join(sub, "state", "admin.sock")); !os.IsNotExist(err) {
				t.Fatalf("the admin socket exists after a refused start (stat: %v)", err)
			}
		})
	}
}
