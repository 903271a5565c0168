package notify

import (
	"context"
	"time"
)

// Claimer sets a once key in a store several hosts share, and reports
// whether this call set it (redisstore.Store).
type Claimer interface {
	Claim(ctx context.Context, key string, ttl time.Duration) (bool, error)
}

// SharedOnce is an Outbox whose once keys are claimed in a shared store
// first, so that hosts with outboxes of their own (each in its state
// directory) send one event between them. A crash between the claim and
// the local write loses that event; the claim is one round trip.
type SharedOnce struct {
	Outbox
	Shared Claimer
}

// Put claims once in the shared store, then writes ev to the local outbox.
func (s SharedOnce) Put(ev Event, once string) (bool, error) {
	if once != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		claimed, err := s.Shared.Claim(ctx, once, OnceTTL)
		if err != nil || !claimed {
			return false, err
		}
	}
	return s.Outbox.Put(ev, once)
}
