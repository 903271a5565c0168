package syncutil

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

func TestWait(t *testing.T) {
	var wg sync.WaitGroup
	wg.Add(1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if err := Wait(ctx, &wg); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("busy group: %v, want the deadline", err)
	}
	wg.Done()
	if err := Wait(context.Background(), &wg); err != nil {
		t.Fatalf("idle group: %v", err)
	}
}

func TestBufferConcurrentWrites(t *testing.T) {
	var b Buffer
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() { b.Write([]byte("x")) })
	}
	wg.Wait()
	if len(b.String()) != 50 {
		t.Fatalf("%d bytes, want 50", len(b.String()))
	}
}

func TestFirstErrorKeepsTheFirst(t *testing.T) {
	var fe FirstError
	if fe.Set(nil) || fe.Err() != nil {
		t.Fatalf("nil error recorded: %v", fe.Err())
	}
	first, second := errors.New("first"), errors.New("second")
	if !fe.Set(first) || !fe.Set(second) {
		t.Fatal("Set of an error reported false")
	}
	if fe.Err() != first {
		t.Fatalf("Err = %v, want the first", fe.Err())
	}
	var wg sync.WaitGroup
	var many FirstError
	for range 50 {
		wg.Go(func() { many.Set(second) })
	}
	wg.Wait()
	if many.Err() != second {
		t.Fatalf("concurrent Set: %v", many.Err())
	}
}
