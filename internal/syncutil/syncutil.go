// Package syncutil holds two small concurrency helpers shared by
// relaycap's packages: a WaitGroup wait bounded by a context, and a
// goroutine-safe buffer that tests hand to a logger.
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
