package policy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relaycap/relaycap/internal/syncutil"
	"github.com/relaycap/relaycap/quota"
	"github.com/relaycap/relaycap/quota/badgerstore"
)

// openStore opens a Badger store in a temp dir, closed when the test ends.
func openStore(t *testing.T) *badgerstore.Store {
	t.Helper()
	bs, err := badgerstore.Open(t.TempDir(), badgerstore.Options{HistoryDays: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bs.Close() })
	return bs
}

// servePolicy serves the policy service over store (default limit 10) on
// a socket in a temp dir and returns it with one client connection.
func servePolicy(t *testing.T, store stores, o Options) (*Server, net.Conn) {
	t.Helper()
	engine, err := quota.NewEngine(quota.NewLocal(store, time.Hour), store, quota.Settings{Location: time.UTC, DefaultDailyLimit: 10, HoldTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(engine, Settings{}, o)
	sock := filepath.Join(t.TempDir(), "p.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return srv, c
}

// TestStoreFailureDefers closes the database under a running service: the
// answer must be a temporary refusal, never DUNNO (which would let the
// milter decide on a store it cannot read either, or let mail through
// where milters are off).
func TestStoreFailureDefers(t *testing.T) {
	store := openStore(t)
	_, c := servePolicy(t, store, Options{})
	r := bufio.NewReader(c)
	ask := func() string {
		fmt.Fprint(c, "protocol_state=RCPT\nsasl_username=alice\n\n")
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		r.ReadString('\n')
		return strings.TrimSpace(line)
	}
	if a := ask(); a != "action=DUNNO" {
		t.Fatalf("healthy store: %q", a)
	}
	store.Close()
	if a := ask(); !strings.HasPrefix(a, "action=DEFER_IF_PERMIT 4.3.0 ") {
		t.Fatalf("closed store: %q, want DEFER_IF_PERMIT 4.3.0", a)
	}
}

// blockingStore holds every usage read until release is closed.
type blockingStore struct {
	*badgerstore.Store
	entered chan struct{}
	release chan struct{}
}

func (b *blockingStore) Usage(a string, d quota.Day, now time.Time) (int64, error) {
	b.entered <- struct{}{}
	<-b.release
	return b.Store.Usage(a, d, now)
}

// TestShutdownEndsAConnectionAfterItsReply: a request being answered when
// Shutdown comes still gets its reply; then the connection ends at once
// rather than waiting for Postfix's next request or the read timeout.
func TestShutdownEndsAConnectionAfterItsReply(t *testing.T) {
	bs := openStore(t)
	store := &blockingStore{Store: bs, entered: make(chan struct{}, 1), release: make(chan struct{})}
	srv, c := servePolicy(t, store, Options{ReadTimeout: time.Hour})
	fmt.Fprint(c, "protocol_state=RCPT\nsasl_username=alice\n\n")
	<-store.entered // the request is being answered

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- srv.Shutdown(ctx) }()
	for !srv.isClosing() {
		time.Sleep(time.Millisecond)
	}
	close(store.release)

	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(c)
	if string(got) != "action=DUNNO\n\n" || err != nil {
		t.Errorf("read %q, %v; want the reply, then the end of the connection", got, err)
	}
	if err := <-done; err != nil {
		t.Errorf("Shutdown: %v, want every connection gone before its deadline", err)
	}
}

// isClosing tells whether Shutdown or Close has begun.
func (s *Server) isClosing() bool { return s.closing.Load() }

// stores is what a test engine runs over: usage and accounts, from one
// Badger store or a wrapper of one.
type stores interface {
	quota.Store
	quota.Accounts
}

// panickyStore panics on the usage of "bomb", as a bug below the policy
// service would.
type panickyStore struct{ *badgerstore.Store }

func (p panickyStore) Usage(account string, day quota.Day, now time.Time) (int64, error) {
	if account == "bomb" {
		panic("usage exploded")
	}
	return p.Store.Usage(account, day, now)
}

// TestPanicEndsOnlyThatConnection: a panic while answering closes that
// connection (Postfix then applies its default action), is logged with
// the stack that led to it, and the next connection is served.
func TestPanicEndsOnlyThatConnection(t *testing.T) {
	bs := openStore(t)
	logs := &syncutil.Buffer{}
	_, c := servePolicy(t, panickyStore{bs}, Options{Logger: slog.New(slog.NewTextHandler(logs, nil))})
	fmt.Fprint(c, "protocol_state=RCPT\nsasl_username=bomb\n\n")
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("after the panic: read %d bytes, %v; want the connection closed", n, err)
	}
	// The log line is written before the connection is closed.
	log := logs.String()
	if !strings.Contains(log, "panic in policy connection") || !strings.Contains(log, "usage exploded") ||
		!strings.Contains(log, "panickyStore.Usage") {
		t.Fatalf("panic not logged with its stack:\n%s", log)
	}
	next, err := net.Dial("unix", c.RemoteAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer next.Close()
	next.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprint(next, "protocol_state=RCPT\nsasl_username=alice\n\n")
	if line, err := bufio.NewReader(next).ReadString('\n'); err != nil || line != "action=DUNNO\n" {
		t.Fatalf("the next connection: %q, %v; want action=DUNNO", line, err)
	}
}
