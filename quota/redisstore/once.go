package redisstore

import (
	"context"
	"time"
)

// Claim sets the once key if no host has set it yet, for ttl, and reports
// whether this call did (SET NX PX): the customer events' once-per-day
// dedupe across every host on this Redis.
func (s *Store) Claim(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	var set bool
	err := s.call(ctx, "claim", func(ctx context.Context) error {
		var err error
		set, err = s.c.SetNX(ctx, s.prefix+"once:"+key, "1", ttl).Result()
		return err
	})
	return set, err
}
