package milter

import (
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	gomilter "github.com/d--j/go-milter"

	"github.com/relaycap/relaycap/quota"
	"github.com/relaycap/relaycap/quota/badgerstore"
)

// failingStore is a Badger store whose reads or writes can be made to fail,
// as a full disk or a broken database would.
type failingStore struct {
	*badgerstore.Store
	failReads, failWrites atomic.Bool
}

var errDiskFull = errors.New("no space left on device")

func (f *failingStore) Usage(a string, d quota.Day, now time.Time) (int64, error) {
	if f.failReads.Load() {
		return 0, errDiskFull
	}
	return f.Store.Usage(a, d, now)
}

func (f *failingStore) AddUsage(a string, add []quota.DayCount) ([]int64, error) {
	if f.failWrites.Load() {
		return nil, errDiskFull
	}
	return f.Store.AddUsage(a, add)
}

// TestStoreFailureIsATemporaryFailure: a store that cannot be read refuses
// the recipient with 451 4.3.0; one that cannot be written defers the
// message with 451 4.3.0 at end of message. Nothing is counted, nothing is
// held, and once the store recovers mail flows again.
func TestStoreFailureIsATemporaryFailure(t *testing.T) {
	bs, err := badgerstore.Open(t.TempDir(), badgerstore.Options{HistoryDays: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer bs.Close()
	store := &failingStore{Store: bs}
	sock, engine, logs := serve(t, store, Settings{IDHeader: "X-Relay-ID", Seal: func(Stamp) (string, error) { return "token", nil }})

	store.failReads.Store(true)
	rcpt, _, err := transaction(t, sock)
	if err != nil || rcpt.SMTPCode != 451 || !strings.HasPrefix(rcpt.SMTPReply, "451 4.3.0") {
		t.Fatalf("unreadable store at RCPT: %v %v, want 451 4.3.0", rcpt, err)
	}
	store.failReads.Store(false)

	store.failWrites.Store(true)
	rcpt, final, err := transaction(t, sock)
	if err != nil || rcpt.StopProcessing() || final.SMTPCode != 451 || !strings.HasPrefix(final.SMTPReply, "451 4.3.0") {
		t.Fatalf("unwritable store at end of message: rcpt %v, final %v, %v; want 451 4.3.0 at the end", rcpt, final, err)
	}
	if d := waitIdle(t, engine); d.Used != 0 || d.Reserved != 0 {
		t.Fatalf("after the failures: %+v, want nothing counted or held", d)
	}
	if !strings.Contains(logs.String(), "result=tempfail") || !strings.Contains(logs.String(), "no space left on device") {
		t.Fatalf("the failure is not in the decision line:\n%s", logs)
	}
	store.failWrites.Store(false)
	if _, final, err := transaction(t, sock); err != nil || final.Type != gomilter.ActionAccept {
		t.Fatalf("after recovery: %v %v, want accept", final, err)
	}
	if d := check(t, engine); d.Used != 1 {
		t.Fatalf("after recovery: used %d, want 1", d.Used)
	}
}
