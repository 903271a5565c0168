package policy

import (
	"bufio"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relaycap/relaycap/quota"
	"github.com/relaycap/relaycap/quota/badgerstore"
)

// TestStoreFailureDefers closes the database under a running service: the
// answer must be a temporary refusal, never DUNNO (which would let the
// milter decide on a store it cannot read either, or let mail through
// where milters are off).
func TestStoreFailureDefers(t *testing.T) {
	store, err := badgerstore.Open(t.TempDir(), badgerstore.Options{HistoryDays: 1})
	if err != nil {
		t.Fatal(err)
	}
	engine, _ := quota.NewEngine(store, quota.Settings{Location: time.UTC, DefaultDailyLimit: 10})
	srv := NewServer(engine, Settings{}, Options{})
	sock := filepath.Join(t.TempDir(), "p.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Close()
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
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
