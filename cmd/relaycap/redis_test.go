package main

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	gomilter "github.com/d--j/go-milter"

	"github.com/relaycap/relaycap/idheader"
	"github.com/relaycap/relaycap/internal/redistest"
)

// host is one `relaycap serve` process with its own state dir.
type host struct {
	dir, cfg string
	cmd      *exec.Cmd
	log      bytes.Buffer
	mu       sync.Mutex // guards log while the process writes it
}

type lockedWriter struct{ h *host }

func (w lockedWriter) Write(p []byte) (int, error) {
	w.h.mu.Lock()
	defer w.h.mu.Unlock()
	return w.h.log.Write(p)
}

func (h *host) logs() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.log.String()
}

// startHost runs `relaycap serve` on unix sockets in a temp dir with the
// store section given, and waits until its policy socket answers.
func startHost(t *testing.T, store, quota string, readTimeout time.Duration) *host {
	t.Helper()
	dir, err := os.MkdirTemp("", "rchost-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if _, err := idheader.Keygen(filepath.Join(dir, "id.keys"), rand.Reader); err != nil {
		t.Fatal(err)
	}
	h := &host{dir: dir, cfg: filepath.Join(dir, "relaycap.yaml")}
	body := fmt.Sprintf("state_dir: %[1]s/state\nmilter: {listen: \"unix:%[1]s/m.sock\", read_timeout: %[2]s}\n"+
		"policy: {listen: \"unix:%[1]s/p.sock\"}\nid_header: {keys_file: %[1]s/id.keys}\n%[3]s\n%[4]s\n",
		dir, readTimeout, store, quota)
	if err := os.WriteFile(h.cfg, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	h.cmd = exec.Command(os.Args[0], "serve", "--config", h.cfg)
	h.cmd.Env = append(os.Environ(), "RELAYCAP_TEST_MAIN=1")
	h.cmd.Stdout, h.cmd.Stderr = lockedWriter{h}, lockedWriter{h}
	if err := h.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		h.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { h.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			h.cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("relaycap log of %s:\n%s", dir, h.logs())
		}
	})
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := h.policy("nobody"); err == nil {
			return h
		}
		if time.Now().After(deadline) {
			t.Fatalf("relaycap serve did not answer on its policy socket:\n%s", h.logs())
		}
	}
}

// policy asks the host's policy service about one RCPT of login.
func (h *host) policy(login string) (string, error) {
	c, err := net.Dial("unix", filepath.Join(h.dir, "p.sock"))
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "request=smtpd_access_policy\nprotocol_state=RCPT\nsasl_username=%s\nrecipient=b@example.net\n\n", login)
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(strings.TrimPrefix(string(buf[:n]), "action=")), nil
}

// usage runs `relaycap usage NAME` against the host's admin socket.
func (h *host) usage(t *testing.T, name string) string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "usage", name, "--config", h.cfg)
	cmd.Env = append(os.Environ(), "RELAYCAP_TEST_MAIN=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("relaycap usage %s: %v\n%s", name, err, out)
	}
	return string(out)
}

// message is one SMTP transaction as Postfix drives the milter: MAIL as
// login, n recipients, end of message. It returns how many recipients were
// counted (0 unless the end of message was accepted).
func (h *host) message(login string, n int) (int, error) {
	macros := gomilter.NewMacroBag()
	c := gomilter.NewClient("unix", filepath.Join(h.dir, "m.sock"),
		gomilter.WithActions(gomilter.OptAddHeader|gomilter.OptChangeHeader|gomilter.OptSetMacros),
		gomilter.WithReadTimeout(10*time.Second))
	s, err := c.Session(macros)
	if err != nil {
		return 0, err
	}
	defer s.Close()
	if _, err := s.Conn("client.example", gomilter.FamilyInet, 40000, "192.0.2.7"); err != nil {
		return 0, err
	}
	if _, err := s.Helo("client.example"); err != nil {
		return 0, err
	}
	macros.Set(gomilter.MacroAuthAuthen, login)
	if _, err := s.Mail("<a@example.org>", ""); err != nil {
		return 0, err
	}
	accepted := 0
	for i := range n {
		act, err := s.Rcpt(fmt.Sprintf("<r%d@example.net>", i), "")
		if err != nil {
			return 0, err
		}
		if !act.StopProcessing() {
			accepted++
		}
	}
	if accepted == 0 {
		return 0, s.Abort(nil)
	}
	macros.Set(gomilter.MacroQueueId, "4QUEUE")
	if _, err := s.DataStart(); err != nil {
		return 0, err
	}
	if _, err := s.HeaderField("Message-ID", "<m@example.org>", nil); err != nil {
		return 0, err
	}
	if _, err := s.HeaderEnd(); err != nil {
		return 0, err
	}
	_, act, err := s.BodyReadFrom(strings.NewReader("Hello.\r\n"))
	if err != nil {
		return 0, err
	}
	if act.Type != gomilter.ActionAccept {
		return 0, nil
	}
	return accepted, nil
}

var hostPrefixes atomic.Int64

func redisStore(addrs []string, holdTTL time.Duration) string {
	quoted := make([]string, len(addrs))
	for i, a := range addrs {
		quoted[i] = fmt.Sprintf("%q", a)
	}
	return fmt.Sprintf("store: {backend: redis, sync_writes: false, redis: {addrs: [%s], key_prefix: \"h%d:\", hold_ttl: %s, timeout: 2s}}",
		strings.Join(quoted, ", "), hostPrefixes.Add(1), holdTTL)
}

// TestThreeHostsOneQuota: three `relaycap serve` processes on one Redis,
// 30 parallel milter sessions spread over them, each a message of 3
// recipients from one account with limit 50: exactly 50 recipients are
// counted, and `relaycap usage` on every host says 50.
func TestThreeHostsOneQuota(t *testing.T) {
	srv := redistest.Start(t)
	store := redisStore([]string{srv.Addr}, time.Hour)
	var hosts []*host
	for range 3 {
		hosts = append(hosts, startHost(t, store, "quota: {accounts: {alice: 50}}", time.Hour))
	}
	var counted atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 30)
	for i := range 30 {
		wg.Go(func() {
			n, err := hosts[i%3].message("alice", 3)
			if err != nil {
				errs <- err
			}
			counted.Add(int64(n))
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if counted.Load() != 50 {
		t.Fatalf("90 recipients against limit 50 over 3 hosts: %d counted", counted.Load())
	}
	for i, h := range hosts {
		out := h.usage(t, "alice")
		if !containsField(out, "used:", "50") {
			t.Errorf("host %d: relaycap usage alice:\n%s", i, out)
		}
		if !containsField(out, "in flight:", "0") {
			t.Errorf("host %d: reservations left in flight:\n%s", i, out)
		}
	}
}

// containsField reports whether a "label: value" line of out has value.
func containsField(out, label, value string) bool {
	for _, line := range strings.Split(out, "\n") {
		if rest, ok := strings.CutPrefix(line, label); ok && strings.TrimSpace(rest) == value {
			return true
		}
	}
	return false
}

// TestKilledHostReturnsCapacityAfterHoldTTL: a host killed with SIGKILL
// while it holds reservations strands them: another host sees the account
// full. Once hold_ttl has passed the capacity is back, and nothing was
// counted for the dead host's message.
func TestKilledHostReturnsCapacityAfterHoldTTL(t *testing.T) {
	srv := redistest.Start(t)
	const holdTTL = 2 * time.Second
	store := redisStore([]string{srv.Addr}, holdTTL)
	quota := "quota: {accounts: {alice: 3}}"
	doomed := startHost(t, store, quota, time.Second)
	other := startHost(t, store, quota, time.Second)

	// Three recipients held on the doomed host, no end of message.
	macros := gomilter.NewMacroBag()
	s, err := gomilter.NewClient("unix", filepath.Join(doomed.dir, "m.sock"),
		gomilter.WithActions(gomilter.OptAddHeader|gomilter.OptChangeHeader|gomilter.OptSetMacros)).Session(macros)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.Conn("client.example", gomilter.FamilyInet, 40000, "192.0.2.7")
	s.Helo("client.example")
	macros.Set(gomilter.MacroAuthAuthen, "alice")
	s.Mail("<a@example.org>", "")
	for i := range 3 {
		if act, err := s.Rcpt(fmt.Sprintf("<r%d@example.net>", i), ""); err != nil || act.StopProcessing() {
			t.Fatalf("rcpt %d on the doomed host: %v %v", i, act, err)
		}
	}
	if err := doomed.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	doomed.cmd.Wait()

	if a, err := other.policy("alice"); err != nil || !strings.HasPrefix(a, "DEFER_IF_PERMIT 4.7.1") {
		t.Fatalf("policy on the other host while the dead host's holds live: %q %v, want over quota", a, err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		a, err := other.policy("alice")
		if err == nil && a == "DUNNO" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("policy 30 s after the kill (hold_ttl %v): %q %v", holdTTL, a, err)
		}
	}
	if n, err := other.message("alice", 3); err != nil || n != 3 {
		t.Fatalf("after the holds expired: %d counted, %v; want all 3", n, err)
	}
	if out := other.usage(t, "alice"); !containsField(out, "used:", "3") {
		t.Fatalf("usage:\n%s", out)
	}
}

// TestHostsOnARedisCluster: two hosts on a 3-node Redis Cluster keep one
// account's limit between them.
func TestHostsOnARedisCluster(t *testing.T) {
	c := redistest.StartCluster(t, 3)
	store := redisStore(c.Addrs(), time.Hour)
	hosts := []*host{
		startHost(t, store, "quota: {accounts: {alice: 7, bob: 7}}", time.Hour),
		startHost(t, store, "quota: {accounts: {alice: 7, bob: 7}}", time.Hour),
	}
	for _, login := range []string{"alice", "bob"} {
		counted := 0
		for i := range 6 {
			n, err := hosts[i%2].message(login, 2)
			if err != nil {
				t.Fatal(err)
			}
			counted += n
		}
		if counted != 7 {
			t.Errorf("%s: 12 recipients against limit 7 over 2 hosts on a cluster: %d counted", login, counted)
		}
	}
}
