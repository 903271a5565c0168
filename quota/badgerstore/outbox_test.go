package badgerstore

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/relaycap/relaycap/notify"
)

func event(now time.Time) notify.Event {
	return notify.Event{ID: notify.NewID(now), Type: notify.TypeThreshold, Time: now, Account: "alice", Percent: 80}
}

func TestOutboxOnceKeyIsAtomic(t *testing.T) {
	s := open(t, t.TempDir())
	defer s.Close()
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	var added atomic.Int64
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := s.Outbox().Put(event(now), "threshold/alice/2026-11-27/80")
			if err != nil {
				t.Error(err)
			}
			if ok {
				added.Add(1)
			}
		}()
	}
	wg.Wait()
	due, err := s.Outbox().Due(now, 100)
	if added.Load() != 1 || err != nil || len(due) != 1 {
		t.Fatalf("16 concurrent puts of one once key: %d added, %d stored (%v)", added.Load(), len(due), err)
	}
}

func TestOutboxOrderRetryDone(t *testing.T) {
	s := open(t, t.TempDir())
	defer s.Close()
	t0 := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	var ids []string
	for i := range 5 {
		ev := event(t0.Add(time.Duration(i) * time.Second))
		ids = append(ids, ev.ID)
		if _, err := s.Outbox().Put(ev, ""); err != nil {
			t.Fatal(err)
		}
	}
	due, err := s.Outbox().Due(t0.Add(time.Minute), 3)
	if err != nil || len(due) != 3 || due[0].Event.ID != ids[0] || due[2].Event.ID != ids[2] {
		t.Fatalf("first 3 due: %+v %v", due, err)
	}
	if err := s.Outbox().Retry(ids[0], 1, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.Outbox().Done(ids[1]); err != nil {
		t.Fatal(err)
	}
	if err := s.Outbox().Done("no-such-id"); err != nil {
		t.Fatalf("done of a missing id: %v", err)
	}
	due, err = s.Outbox().Due(t0.Add(time.Minute), 10)
	if err != nil || len(due) != 3 || due[0].Event.ID != ids[2] {
		t.Fatalf("due after a retry and a done: %+v %v", due, err)
	}
	due, err = s.Outbox().Due(t0.Add(time.Hour), 10)
	if err != nil || len(due) != 4 || due[0].Event.ID != ids[0] || due[0].Attempts != 1 {
		t.Fatalf("due an hour later: %+v %v", due, err)
	}
}

// TestOutboxSurvivesKillNine: a child puts events and prints the id of
// each Put that returned; after SIGKILL every printed id is still there.
func TestOutboxSurvivesKillNine(t *testing.T) {
	if dir := os.Getenv("RELAYCAP_OUTBOX_KILL9_DIR"); dir != "" {
		putForever(dir)
		return
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestOutboxSurvivesKillNine$")
	cmd.Env = append(os.Environ(), "RELAYCAP_OUTBOX_KILL9_DIR="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := map[string]bool{}
	sc := bufio.NewScanner(out)
	for sc.Scan() && len(acked) < 200 {
		if id, ok := strings.CutPrefix(sc.Text(), "put "); ok {
			acked[id] = true
		}
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	if len(acked) < 200 {
		t.Fatalf("child acknowledged only %d puts", len(acked))
	}
	s := open(t, dir)
	defer s.Close()
	due, err := s.Outbox().Due(time.Now().Add(time.Hour), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	stored := map[string]bool{}
	for _, e := range due {
		stored[e.Event.ID] = true
	}
	for id := range acked {
		if !stored[id] {
			t.Fatalf("acknowledged event %s lost to kill -9 (%d stored)", id, len(stored))
		}
	}
}

func putForever(dir string) {
	s, err := Open(dir, Options{HistoryDays: 10, SyncWrites: true})
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(1)
	}
	for i := 0; ; i++ {
		ev := event(time.Now())
		if _, err := s.Outbox().Put(ev, fmt.Sprintf("k%d", i)); err != nil {
			fmt.Println("put:", err)
			os.Exit(1)
		}
		fmt.Println("put", ev.ID)
	}
}
