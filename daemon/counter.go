package daemon

import (
	"context"
	"fmt"
	"time"

	"github.com/relaycap/relaycap/config"
	"github.com/relaycap/relaycap/quota"
	"github.com/relaycap/relaycap/quota/badgerstore"
	"github.com/relaycap/relaycap/quota/redisstore"
)

// openCounter returns the counter store.backend names: holds in this
// process in front of Badger, or Redis shared with the other hosts.
func (d *Daemon) openCounter(cfg *config.Config, store *badgerstore.Store) (quota.Counter, error) {
	if cfg.Store.Backend != config.BackendRedis {
		return quota.NewLocal(d.metrics.WrapStore(store), time.Minute), nil
	}
	password, err := redisPassword(cfg)
	if err != nil {
		return nil, &ConfigError{fmt.Errorf("store.redis.password_file: %w", err)}
	}
	r := cfg.Store.Redis
	d.redis, err = redisstore.Open(context.Background(), redisstore.Options{
		Addrs: r.Addrs, Password: password, TLS: r.TLS, KeyPrefix: r.KeyPrefix,
		Timeout: r.Timeout, WaitReplicas: int(r.WaitReplicas), Logger: d.log,
		// Like Badger's: the history plus the day itself and a margin for
		// the offset between the zone and UTC.
		KeepUsage: time.Duration(cfg.Quota.HistoryDays+2) * 24 * time.Hour,
	})
	if err != nil {
		return nil, err
	}
	return d.redis, nil
}

// redisPassword reads store.redis.password_file's first line ("" when no
// file is set). Others must not be able to read it.
func redisPassword(cfg *config.Config) (string, error) {
	if cfg.Store.Backend != config.BackendRedis || cfg.Store.Redis.PasswordFile == "" {
		return "", nil
	}
	return readSecret(cfg.Store.Redis.PasswordFile, 1)
}
