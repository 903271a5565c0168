package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/relaycap/relaycap/idheader"
	"github.com/relaycap/relaycap/internal/syncutil"
)

// TestMain runs relaycap's main instead of the tests when a test starts
// this binary as a daemon of its own.
func TestMain(m *testing.M) {
	if os.Getenv("RELAYCAP_TEST_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestSIGHUPDuringSlowStart starts `relaycap serve` as a process on
// 300,000 accounts and sends it SIGHUP every millisecond from the moment it
// says it is loading its configuration until it is ready: it must become
// ready, answer, reload for them (the SIGHUPs waiting are answered by one
// reload) and stop cleanly on SIGTERM.
func TestSIGHUPDuringSlowStart(t *testing.T) {
	dir := t.TempDir()
	if _, err := idheader.Keygen(filepath.Join(dir, "id.keys"), rand.Reader); err != nil {
		t.Fatal(err)
	}
	var accts bytes.Buffer
	for i := range 300000 {
		fmt.Fprintf(&accts, "user%06d@example.com: 5\n", i)
	}
	if err := os.WriteFile(filepath.Join(dir, "accounts.yaml"), accts.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "relaycap.yaml")
	body := fmt.Sprintf("state_dir: %[1]s/state\nmilter: {listen: \"unix:%[1]s/m.sock\"}\npolicy: {listen: \"unix:%[1]s/p.sock\"}\n"+
		"id_header: {keys_file: %[1]s/id.keys}\nstore: {sync_writes: false}\nquota: {accounts_file: accounts.yaml}\n", dir)
	if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	notifySock := filepath.Join(dir, "notify.sock")
	nc, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notifySock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	ready := make(chan struct{}, 16)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := nc.Read(buf)
			if err != nil {
				return
			}
			if string(buf[:n]) == "READY=1" {
				ready <- struct{}{}
			}
		}
	}()

	cmd := exec.Command(os.Args[0], "serve", "--config", cfg)
	cmd.Env = append(os.Environ(), "RELAYCAP_TEST_MAIN=1", "NOTIFY_SOCKET="+notifySock)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	var logs syncutil.Buffer
	loading := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			fmt.Fprintln(&logs, sc.Text())
			if strings.Contains(sc.Text(), "loading the configuration") {
				close(loading)
			}
		}
		exited <- cmd.Wait()
	}()
	defer func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-exited
		}
	}()
	select {
	case <-loading:
	case err := <-exited:
		t.Fatalf("serve exited before loading: %v\n%s", err, &logs)
	case <-time.After(30 * time.Second):
		t.Fatalf("serve said nothing of loading\n%s", &logs)
	}
	sent := 0
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
hup:
	for {
		select {
		case <-ready:
			break hup
		case err := <-exited:
			t.Fatalf("serve ended after %d SIGHUPs during its start: %v\n%s", sent, err, &logs)
		case <-tick.C:
			if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
				t.Fatalf("SIGHUP %d: %v", sent+1, err)
			}
			sent++
		case <-time.After(60 * time.Second):
			t.Fatalf("not ready after %d SIGHUPs\n%s", sent, &logs)
		}
	}
	c, err := net.Dial("unix", filepath.Join(dir, "p.sock"))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(c, "protocol_state=RCPT\nsasl_username=user123456@example.com\n\n")
	answer, err := bufio.NewReader(c).ReadString('\n')
	c.Close()
	if err != nil || strings.TrimSpace(answer) != "action=DUNNO" {
		t.Fatalf("policy answer %q, %v", answer, err)
	}
	for deadline := time.Now().Add(60 * time.Second); !strings.Contains(logs.String(), "config reloaded"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no reload for the SIGHUPs of the start\n%s", &logs)
		}
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("serve after SIGTERM: %v\n%s", err, &logs)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop on SIGTERM")
	}
	if !strings.Contains(logs.String(), "signals arrived during the start") {
		t.Errorf("%d SIGHUPs sent, none waited for the start to end:\n%s", sent, &logs)
	}
}
