package main

import (
	"bufio"
	"crypto/rand"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/relaycap/relaycap/idheader"
	"github.com/relaycap/relaycap/internal/syncutil"
)

// TestServeSignals runs `relaycap serve` in process and drives it with
// signals: a bad config on SIGHUP keeps the running one, a good one swaps
// in, SIGTERM stops it cleanly.
func TestServeSignals(t *testing.T) {
	dir := t.TempDir()
	if _, err := idheader.Keygen(filepath.Join(dir, "id.keys"), rand.Reader); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "relaycap.yaml")
	write := func(body string) {
		t.Helper()
		common := fmt.Sprintf("state_dir: %[1]s/state\nmilter: {listen: \"unix:%[1]s/m.sock\"}\npolicy: {listen: \"unix:%[1]s/p.sock\"}\nid_header: {keys_file: %[1]s/id.keys}\n", dir)
		if err := os.WriteFile(cfg, []byte(common+body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("quota: {accounts: {alice: 0}}\n")

	// systemd's side of sd_notify: a datagram socket named by NOTIFY_SOCKET.
	notifySock := filepath.Join(dir, "notify.sock")
	nc, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notifySock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	t.Setenv("NOTIFY_SOCKET", notifySock)
	var notes syncutil.Buffer
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := nc.Read(buf)
			if err != nil {
				return
			}
			fmt.Fprintf(&notes, "%s|", buf[:n])
		}
	}()

	logs := &syncutil.Buffer{}
	root := newRootCommand()
	root.SetErr(logs)
	root.SetArgs([]string{"serve", "--config", cfg})
	done := make(chan error, 1)
	go func() { done <- root.Execute() }()
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); !ok(); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("no %s within 30 s; log:\n%s", what, logs)
			}
		}
	}
	waitFor("READY=1", func() bool { return strings.Contains(notes.String(), "READY=1") })

	ask := func() string {
		t.Helper()
		var c net.Conn
		var err error
		if c, err = net.Dial("unix", filepath.Join(dir, "p.sock")); err != nil {
			t.Fatalf("policy socket after READY=1: %v\n%s", err, logs)
		}
		defer c.Close()
		fmt.Fprint(c, "protocol_state=RCPT\nsasl_username=alice\n\n")
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(line)
	}
	waitLog := func(what string, n int) {
		t.Helper()
		waitFor(fmt.Sprintf("%q in the log", what), func() bool { return strings.Count(logs.String(), what) >= n })
	}
	if a := ask(); !strings.HasPrefix(a, "action=REJECT 5.7.1 Account alice has no relay quota") {
		t.Fatalf("limit 0: %q", a)
	}
	write("quota: {accounts: {alice: 5}, over_quota: sometimes}\nbogus_key: 1\n")
	syscall.Kill(os.Getpid(), syscall.SIGHUP)
	waitLog("reload failed; keeping the running config", 1)
	if !strings.Contains(logs.String(), "bogus_key") {
		t.Errorf("the failed reload does not name the problem:\n%s", logs)
	}
	if a := ask(); !strings.Contains(a, "no relay quota") {
		t.Fatalf("after a bad reload: %q, want the old config", a)
	}
	write("quota: {accounts: {alice: 5}}\n")
	syscall.Kill(os.Getpid(), syscall.SIGHUP)
	waitLog("config reloaded", 1)
	if a := ask(); a != "action=DUNNO" {
		t.Fatalf("after a good reload: %q", a)
	}
	syscall.Kill(os.Getpid(), syscall.SIGTERM)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve after SIGTERM: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop on SIGTERM")
	}
	if _, err := os.Stat(filepath.Join(dir, "p.sock")); !os.IsNotExist(err) {
		t.Errorf("policy socket left behind: %v", err)
	}
	// Two reloads, each announced with the monotonic time that
	// Type=notify-reload requires, then ready again; then stopping.
	for range 100 {
		if strings.Contains(notes.String(), "STOPPING=1") {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	got := notes.String()
	reload := regexp.MustCompile(`RELOADING=1\nMONOTONIC_USEC=[1-9][0-9]*\|READY=1\|`)
	if !strings.HasPrefix(got, "READY=1|") || len(reload.FindAllString(got, -1)) != 2 || !strings.HasSuffix(got, "STOPPING=1|") {
		t.Errorf("sd_notify messages: %q", got)
	}
}
