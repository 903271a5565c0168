// Package syncutil holds small concurrency helpers shared by relaycap's
// packages: a WaitGroup wait bounded by a context, a goroutine-safe buffer
// that tests hand to a logger, and the first error of many goroutines.
package syncutil

import (
	"context"
	"strings"
	"sync"
)

// Wait waits for wg until ctx ends; it returns ctx's error if that came
// first. The goroutine waiting on wg outlives a cancelled call until wg is
// done, which is the price of sync.WaitGroup having no timeout.
func Wait(ctx context.Context, wg *sync.WaitGroup) error {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Buffer is a strings.Builder safe for concurrent Write and String.
type Buffer struct {
	mu sync.Mutex
	b  strings.Builder
}

// Write appends p.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// FirstError keeps the first error reported by any goroutine. Benchmarks
// use it in RunParallel workers, which must not call b.Fatal: FailNow
// belongs to the benchmark's own goroutine (package testing).
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
