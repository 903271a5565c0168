package benchutil

import (
	"errors"
	"sync"
	"testing"
)

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
