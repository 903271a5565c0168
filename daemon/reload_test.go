package daemon

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	gomilter "github.com/d--j/go-milter"

	"github.com/relaycap/relaycap/config"
)

// TestReloadUnderLoadCountsExactly sends mail through the milter from up to
// four sessions at once while the config, with 50,000 accounts in its accounts file, is
// reloaded ten times: every recipient is accepted, and the usage afterwards
// is exactly what was accepted.
func TestReloadUnderLoadCountsExactly(t *testing.T) {
	const senders, reloads = 4, 10
	td := startDaemon(t, "")
	// Written whole and renamed, as an operator's tooling should: a reload
	// must never see half a file.
	writeAccounts := func(limit int) error {
		var b bytes.Buffer
		for i := range 50000 {
			fmt.Fprintf(&b, "user%05d@example.com: %d\n", i, limit)
		}
		tmp := filepath.Join(td.dir, "accounts.yaml.new")
		if err := os.WriteFile(tmp, b.Bytes(), 0o644); err != nil {
			return err
		}
		return os.Rename(tmp, filepath.Join(td.dir, "accounts.yaml"))
	}
	if err := writeAccounts(1000000); err != nil {
		t.Fatal(err)
	}
	td.reload(t, "quota: {accounts_file: accounts.yaml}\n")

	// The reloads run beside the senders (parallel subtests may be held
	// back to GOMAXPROCS at a time), from their first message on.
	var accepted [senders]atomic.Int64
	var done atomic.Bool
	sending := make(chan struct{})
	var once sync.Once
	reloaded := make(chan error, 1)
	go func() {
		defer done.Store(true)
		<-sending
		for k := range reloads {
			err := writeAccounts(1000000 - k%2) // a new table each time
			var cfg *config.Config
			if err == nil {
				cfg, err = config.Load(td.cfgPath, nil)
			}
			if err == nil {
				err = td.Reload(cfg)
			}
			if err != nil {
				reloaded <- err
				return
			}
		}
		reloaded <- nil
	}()
	t.Run("load", func(t *testing.T) {
		for i := range senders {
			t.Run(fmt.Sprint("sender", i), func(t *testing.T) {
				t.Parallel()
				login := fmt.Sprintf("user%05d@example.com", i*1000)
				s := td.milterSession(t)
				for first := true; first || !done.Load(); first = false {
					s.mail(login)
					n, refused := s.rcpts(2)
					if len(refused) > 0 {
						t.Errorf("refused during reloads: %v", refused)
						break
					}
					if _, act := s.data(plainHeaders); act.Type != gomilter.ActionAccept {
						t.Errorf("end of message during reloads: %v", act)
						break
					}
					accepted[i].Add(int64(n))
					once.Do(func() { close(sending) })
				}
			})
		}
	})
	if err := <-reloaded; err != nil {
		t.Fatal(err)
	}
	var total int64
	for i := range senders {
		d, err := td.Engine().Check(context.Background(), fmt.Sprintf("user%05d@example.com", i*1000), td.clock.now())
		if err != nil {
			t.Fatal(err)
		}
		if d.Used != accepted[i].Load() {
			t.Errorf("sender %d: %d recipients accepted, %d counted", i, accepted[i].Load(), d.Used)
		}
		total += d.Used
	}
	if total == 0 {
		t.Fatal("nothing was sent during the reloads")
	}
	t.Logf("%d recipients through %d reloads", total, reloads)
}
