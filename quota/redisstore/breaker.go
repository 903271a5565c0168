package redisstore

import (
	"errors"
	"sync"
	"time"
)

// ErrUnavailable is what calls get while the circuit breaker is open.
var ErrUnavailable = errors.New("redis is unavailable (circuit breaker open)")

// breaker keeps a dead or stalled Redis from making every session wait its
// full timeout: after threshold consecutive failures it fails calls at once
// for cooldown, then lets one call through to probe; its success closes
// the breaker, its failure opens it again.
type breaker struct {
	threshold int
	cooldown  time.Duration
	now       func() time.Time

	mu       sync.Mutex
	failures int
	openedAt time.Time // zero: closed
	probing  bool
}

// allow reports whether a call may go to Redis now.
func (b *breaker) allow() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.openedAt.IsZero() {
		return true
	}
	if b.probing || b.now().Sub(b.openedAt) < b.cooldown {
		return false
	}
	b.probing = true
	return true
}

// done records a call's outcome; failed means Redis did not answer well.
func (b *breaker) done(failed bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.probing = false
	if !failed {
		b.failures, b.openedAt = 0, time.Time{}
		return
	}
	b.failures++
	if b.failures >= b.threshold || !b.openedAt.IsZero() {
		b.openedAt = b.now()
	}
}

// open reports whether the breaker is refusing calls.
func (b *breaker) open() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return !b.openedAt.IsZero()
}
