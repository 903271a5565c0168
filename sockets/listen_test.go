package sockets

import (
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

func TestUnixSocketModeAndGroup(t *testing.T) {
	path := filepath.Join(t.TempDir(), "milter.sock")
	// As root (CI), a group that is not ours proves the chown happened;
	// otherwise only our own group can be given.
	g, err := user.LookupGroupId(strconv.Itoa(os.Getgid()))
	if os.Geteuid() == 0 {
		g, err = user.LookupGroup("nogroup")
	}
	if err != nil {
		t.Fatal(err)
	}
	wantGid, _ := strconv.Atoi(g.Gid)
	ln, err := Listen("unix:"+path, 0o660, g.Name)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o660 {
		t.Errorf("mode %v, want 0660", fi.Mode().Perm())
	}
	if gid := fi.Sys().(*syscall.Stat_t).Gid; int(gid) != wantGid {
		t.Errorf("gid %d, want %d (%s)", gid, wantGid, g.Name)
	}
	if _, err := Listen("unix:"+path, 0o660, ""); err == nil || !strings.Contains(err.Error(), "another process") {
		t.Errorf("second listener on a live socket: %v", err)
	}
}

func TestStaleSocketIsReplaced(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policy.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close() // leaves the file behind, as a crash would
	ln, err = Listen("unix:"+path, 0o600, "")
	if err != nil {
		t.Fatalf("stale socket: %v", err)
	}
	ln.Close()
}

func TestRefusesToReplaceAFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "not-a-socket")
	os.WriteFile(path, []byte("x"), 0o600)
	if _, err := Listen("unix:"+path, 0o600, ""); err == nil {
		t.Fatal("replaced a regular file")
	}
	if _, err := Listen("tcp:127.0.0.1:0", 0, ""); err == nil {
		t.Fatal("accepted a bad address")
	}
}
