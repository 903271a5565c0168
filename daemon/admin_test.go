package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	gomilter "github.com/d--j/go-milter"

	"github.com/relaycap/relaycap/admin"
	"github.com/relaycap/relaycap/config"
	"github.com/relaycap/relaycap/sockets"
)

var bg = context.Background()

func (td *testDaemon) adminClient(t testing.TB) *admin.Client {
	t.Helper()
	c, err := admin.NewClient(td.Config().Admin.Listen, "")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func provision(t testing.TB, c *admin.Client, name string, limit int64) {
	t.Helper()
	if _, err := c.PutAccount(bg, name, admin.AccountRequest{DailyLimit: &limit}); err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
}

// TestPurchaseMidSessionLetsTheNextRcptThrough: a session at its limit gets
// its next recipient as soon as the billing system's purchase lands.
func TestPurchaseMidSessionLetsTheNextRcptThrough(t *testing.T) {
	td := startDaemon(t, "")
	c := td.adminClient(t)
	provision(t, c, "alice@example.com", 2)
	s := td.milterSession(t)
	s.mail("alice@example.com")
	if n, refused := s.rcpts(3); n != 2 || len(refused) != 1 || !strings.HasPrefix(refused[0], "450 4.7.1 ") {
		t.Fatalf("before the purchase: accepted %d, refused %v", n, refused)
	}
	if _, err := c.Purchase(bg, "alice@example.com", admin.PurchaseRequest{Relays: 1, PurchaseID: "ord-1"}); err != nil {
		t.Fatal(err)
	}
	if n, refused := s.rcpts(1); n != 1 {
		t.Fatalf("after the purchase: refused %v", refused)
	}
	if _, act := s.data(plainHeaders); act.Type != gomilter.ActionAccept {
		t.Fatalf("end of message: %v", act)
	}
	wantDecision(t, td.logs.String(), "alice@example.com", map[string]string{"accepted": "3", "used": "3", "limit": "3", "result": "accept"})
}

// TestSuspensionBitesAnOpenSession: the next RCPT is refused, and so is
// the end of the message whose recipients were accepted before; nothing
// is counted, nothing stays reserved.
func TestSuspensionBitesAnOpenSession(t *testing.T) {
	td := startDaemon(t, "")
	c := td.adminClient(t)
	provision(t, c, "mallory", 10)
	s := td.milterSession(t)
	s.mail("mallory")
	if n, _ := s.rcpts(2); n != 2 {
		t.Fatalf("accepted %d of 2", n)
	}
	if _, err := c.SetStatus(bg, "mallory", "suspend", "spam complaint"); err != nil {
		t.Fatal(err)
	}
	if n, refused := s.rcpts(1); n != 0 || len(refused) != 1 || refused[0] != "550 5.7.1 Account mallory is suspended" {
		t.Fatalf("next RCPT after suspension: accepted %d, refused %v", n, refused)
	}
	_, act := s.data(plainHeaders)
	if act.Type != gomilter.ActionRejectWithCode || act.SMTPReply != "550 5.7.1 Account mallory is suspended" {
		t.Fatalf("end of message after suspension: %v %q, want 550 5.7.1", act.Type, act.SMTPReply)
	}
	wantDecision(t, td.logs.String(), "mallory", map[string]string{"accepted": "0", "refused": "3", "result": "refused", "verdict": "suspended"})
	u, err := c.Usage(bg, "mallory")
	if err != nil || u.Used != 0 || u.Reserved != 0 || u.Status != "suspended" {
		t.Fatalf("usage after the refused message: %+v, %v", u, err)
	}
	p := td.policyConn(t)
	if got := p.ask(rcptRequest("mallory")); !strings.HasPrefix(got, "REJECT 5.7.1 ") {
		t.Fatalf("policy for a suspended account: %q", got)
	}
}

func TestFileManagedAccountAnswers409(t *testing.T) {
	td := startDaemon(t, "quota: {accounts: {bob: 5}}\n")
	_, err := td.adminClient(t).SetStatus(bg, "bob", "suspend", "x")
	var ae *admin.APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusConflict || !strings.Contains(ae.Message, td.cfgPath) {
		t.Fatalf("suspend of a file account: %v, want 409 naming %s", err, td.cfgPath)
	}
}

func writeToken(t *testing.T, dir string, mode os.FileMode) string {
	t.Helper()
	path := filepath.Join(dir, "admin.token")
	if err := os.WriteFile(path, []byte("s3cret-s3cret-s3cret-s3cret\n"), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestAdminTCPNeedsTheToken: the TCP listener answers 401 without the
// token and serves with it.
func TestAdminTCPNeedsTheToken(t *testing.T) {
	tokenDir := t.TempDir()
	token := writeToken(t, tokenDir, 0o600)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	td := startDaemon(t, fmt.Sprintf("admin: {listen_tcp: \"inet:%s\", token_file: %s}\n", addr, token))
	provision(t, td.adminClient(t), "alice", 1)
	anon, err := admin.NewClient("inet:"+addr, "")
	if err != nil {
		t.Fatal(err)
	}
	_, err = anon.Usage(bg, "alice")
	var ae *admin.APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusUnauthorized {
		t.Fatalf("without a token: %v, want 401", err)
	}
	withToken, err := admin.NewClient("inet:"+addr, "s3cret-s3cret-s3cret-s3cret")
	if err != nil {
		t.Fatal(err)
	}
	if u, err := withToken.Usage(bg, "alice"); err != nil || u.Limit != 1 {
		t.Fatalf("with the token: %+v, %v", u, err)
	}
}

// TestAdminTCPTokenFileMustBePrivate: no token file, or one others may
// read, stops the start with a ConfigError (exit 2).
func TestAdminTCPTokenFileMustBePrivate(t *testing.T) {
	dir := t.TempDir()
	for name, path := range map[string]string{
		"missing":  filepath.Join(dir, "none"),
		"readable": writeToken(t, dir, 0o644),
	} {
		cfgPath := writeConfig(t, t.TempDir(), fmt.Sprintf("admin: {listen_tcp: \"inet:127.0.0.1:0\", token_file: %s}\n", path))
		cfg, err := config.Load(cfgPath, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = Start(cfg, Options{})
		var ce *ConfigError
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), "admin.token_file") {
			t.Errorf("%s token file: %v, want a ConfigError about admin.token_file", name, err)
		}
	}
}

// TestAdminSocketHasSocketMode: the admin socket's permissions are its
// access control, so it gets socket.mode like the milter and policy
// sockets, and a caller the mode lets in is logged with its uid.
func TestAdminSocketHasSocketMode(t *testing.T) {
	td := startDaemon(t, "socket: {mode: \"0600\"}\n")
	network, path, err := sockets.ParseListen(td.Config().Admin.Listen)
	if err != nil || network != "unix" {
		t.Fatalf("admin.listen %q: %s, %v", td.Config().Admin.Listen, network, err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o600 {
		t.Fatalf("admin socket %s: mode %v, want a socket with 0600", path, fi.Mode())
	}
	provision(t, td.adminClient(t), "alice", 1)
	if !strings.Contains(td.logs.String(), fmt.Sprintf("path=/v1/accounts/alice status=200 actor=\"uid=%d\" uid=%d", os.Getuid(), os.Getuid())) {
		t.Fatalf("no request line with the caller's uid:\n%s", td.logs.String())
	}
}
