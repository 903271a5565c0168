// Package redistest starts real redis-server processes for tests: one on a
// unix socket in the test's temp dir, or a 3-node Redis Cluster on
// loopback ports. Persistence is off; every process is stopped by its PID
// when the test ends. A missing redis-server fails the test.
package redistest

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Server is one redis-server.
type Server struct {
	Addr string // "unix:/path" or "127.0.0.1:port", as store.redis.addrs takes it
	dir  string
	cmd  *exec.Cmd
}

// Start runs redis-server on a unix socket in a temp dir.
func Start(t testing.TB) *Server {
	t.Helper()
	dir := shortTempDir(t)
	sock := filepath.Join(dir, "redis.sock")
	s := start(t, dir, "--port", "0", "--unixsocket", sock, "--unixsocketperm", "700")
	s.Addr = "unix:" + sock
	s.waitReady(t)
	return s
}

// shortTempDir is a temp dir with a path short enough for a unix socket
// (108 bytes), which t.TempDir's long test names can exceed.
func shortTempDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "rcredis-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func start(t testing.TB, dir string, args ...string) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server is needed for this test (apt-get install redis-server): %v", err)
	}
	args = append(args, "--dir", dir, "--save", "", "--appendonly", "no",
		"--daemonize", "no", "--logfile", filepath.Join(dir, "redis.log"))
	cmd := exec.Command(bin, args...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &Server{dir: dir, cmd: cmd}
	t.Cleanup(s.stop)
	return s
}

// stop kills the server by its PID (resuming it first if it was stopped).
func (s *Server) stop() {
	s.cmd.Process.Signal(syscall.SIGCONT)
	s.cmd.Process.Kill()
	s.cmd.Wait()
}

// Pause stops the server with SIGSTOP: connections stay open, nothing
// answers.
func (s *Server) Pause(t testing.TB) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
}

// Resume continues a paused server.
func (s *Server) Resume(t testing.TB) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
}

// Log returns the server's log, for failure messages.
func (s *Server) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
	return string(b)
}

func (s *Server) dial() (net.Conn, error) {
	if path, ok := strings.CutPrefix(s.Addr, "unix:"); ok {
		return net.DialTimeout("unix", path, time.Second)
	}
	return net.DialTimeout("tcp", s.Addr, time.Second)
}

// Do sends one command in the inline protocol and returns the first line
// of the answer (enough for PING, CLUSTER INFO's state, DBSIZE).
func (s *Server) Do(args ...string) (string, error) {
	c, err := s.dial()
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprintf(c, "%s\r\n", strings.Join(args, " ")); err != nil {
		return "", err
	}
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimSpace(line)
	if strings.HasPrefix(line, "$") { // a bulk string: read it whole
		n, _ := strconv.Atoi(line[1:])
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	}
	return line, nil
}

// waitReady waits until the server answers PING.
func (s *Server) waitReady(t testing.TB) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; {
		if out, err := s.Do("PING"); err == nil && out == "+PONG" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server at %s did not answer PING:\n%s", s.Addr, s.Log())
		}
		if s.cmd.ProcessState != nil {
			t.Fatalf("redis-server exited:\n%s", s.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
