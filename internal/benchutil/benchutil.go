// Package benchutil holds what relaycap's benchmarks share: the reserve
// and commit cycle of one relay, run in parallel workers that report a
// failure the way package testing allows.
package benchutil

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Engine is the part of quota.Engine the cycle drives. It is generic so
// that package quota's own benchmark can use it without an import cycle.
type Engine[Txn any, Decision interface{ Allowed() bool }] interface {
	Reserve(ctx context.Context, txn *Txn, login string, now time.Time) (Decision, error)
	Commit(ctx context.Context, txn *Txn, now time.Time) (Decision, error)
}

// ReserveCommit reserves and commits one relay per iteration in
// b.RunParallel, spread over the logins user0 … user999, which must all be
// allowed. Workers must not call b.Fatal (FailNow belongs to the
// benchmark's own goroutine): the first error stops them, and the
// benchmark fails once they are done.
func ReserveCommit[Txn any, D interface{ Allowed() bool }](b *testing.B, e Engine[Txn, D], now time.Time) {
	ctx := context.Background()
	var next atomic.Int64
	var failed FirstError
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		// One Txn per worker: Commit empties it for the next relay, and a
		// Txn per iteration would escape through the interface and add an
		// allocation the daemon's sessions do not make.
		var txn Txn
		for pb.Next() {
			login := "user" + strconv.FormatInt(next.Add(1)%1000, 10)
			d, err := e.Reserve(ctx, &txn, login, now)
			if err == nil && !d.Allowed() {
				err = fmt.Errorf("reserve for %s refused: %+v", login, d)
			}
			if failed.Set(err) {
				return
			}
			if _, err := e.Commit(ctx, &txn, now); failed.Set(err) {
				return
			}
		}
	})
	if err := failed.Err(); err != nil {
		b.Fatal(err)
	}
}

// FirstError keeps the first error reported by any goroutine, for
// RunParallel workers that must not call b.Fatal.
type FirstError struct {
	mu  sync.Mutex
	err error
}

// Set records err if it is the first non-nil one; it reports whether err
// was non-nil, so a worker can write `if fe.Set(err) { return }`.
func (f *FirstError) Set(err error) bool {
	if err == nil {
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err == nil {
		f.err = err
	}
	return true
}

// Err returns the first error set, or nil.
func (f *FirstError) Err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}
