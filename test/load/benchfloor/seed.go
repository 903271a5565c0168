package main

import (
	"context"
	"fmt"
	"github.com/dgraph-io/badger/v4"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/relaycap/relaycap/quota"
	"github.com/relaycap/relaycap/quota/badgerstore"
)

// seed writes store-managed accounts (and, for the first active of them,
// one relay used today) into the state directory before the daemon starts.
// One process owns a Badger directory, so this runs while none serves it.
func seed(stateDir string, names []string, limit int64, active int, now time.Time, loc *time.Location) error {
	st, err := badgerstore.Open(stateDir, badgerstore.Options{HistoryDays: 400,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return err
	}
	day := quota.DayOf(now, loc)
	ctx := context.Background()
	var next atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	// Badger batches concurrent transactions; one writer would take minutes
	// for a million accounts.
	for range 16 {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(names) {
					return
				}
				c := quota.Change{DailyLimit: &limit, Actor: "bench-floor", Reason: "seed", Time: now, Day: day}
				_, err := st.UpdateAccount(ctx, names[i], c.Apply(names[i]))
				if err == nil && i < active {
					_, err = st.AddUsage(names[i], []quota.DayCount{{Day: day, N: 1}})
				}
				if err != nil {
					once.Do(func() { firstErr = fmt.Errorf("seed %s: %w", names[i], err) })
					return
				}
			}
		})
	}
	wg.Wait()
	if err := st.Close(); err != nil && firstErr == nil {
		firstErr = err
	}
	if firstErr != nil {
		return firstErr
	}
	return settle(stateDir)
}

// settle compacts the freshly written database down to its last level, as
// a database that grew to this size over months would be: measured right
// after a bulk write, the daemon's memory is Badger's compaction of it.
func settle(dir string) error {
	db, err := badger.Open(badger.DefaultOptions(dir).WithLogger(nil).WithNumVersionsToKeep(1))
	if err != nil {
		return err
	}
	if err := db.Flatten(2); err != nil {
		db.Close()
		return err
	}
	return db.Close()
}
