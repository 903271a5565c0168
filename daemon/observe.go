package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/relaycap/relaycap/config"
	"github.com/relaycap/relaycap/metrics"
	"github.com/relaycap/relaycap/quota"
	"github.com/relaycap/relaycap/quota/badgerstore"
	"github.com/relaycap/relaycap/sockets"
)

// healthAccount is the key /healthz reads to see that the store answers;
// no login can be empty, so it never names an account.
const healthAccount = ""

// startMetrics listens on metrics.listen, if set, and serves /metrics and
// /healthz there.
func (d *Daemon) startMetrics(cfg *config.Config) error {
	d.metrics.WatchState(d.snapshot)
	if cfg.Metrics.Listen == "" {
		return nil
	}
	ln, err := sockets.Listen(cfg.Metrics.Listen, cfg.Socket.Mode, cfg.Socket.Group)
	if err != nil {
		return fmt.Errorf("metrics listener: %w", err)
	}
	d.metricsLn = ln
	d.metricsSrv = metrics.NewServer(d.metrics, d.Health, d.log.With("component", "metrics"))
	d.serve("metrics", func() error { return d.metricsSrv.Serve(ln) })
	return nil
}

// MetricsAddr is the address the metrics listener got (with the port
// chosen for inet:host:0), or nil when metrics are off.
func (d *Daemon) MetricsAddr() net.Addr {
	if d.metricsLn == nil {
		return nil
	}
	return d.metricsLn.Addr()
}

// ReloadFrom loads a config with load and reloads it; a load that fails
// counts as a failed reload, as one Reload refuses does.
func (d *Daemon) ReloadFrom(load func() (*config.Config, error)) error {
	cfg, err := load()
	if err != nil {
		d.reloaded(err)
		return err
	}
	return d.Reload(cfg)
}

// Health says why relaycap cannot relay mail now, or nil: an
// identification key must be loaded (else authenticated mail is deferred),
// the last reload must have found one in the keys file (else a restart
// would defer it), and the store must answer a read and accept writes (not
// below store.min_free_mb).
func (d *Daemon) Health() error {
	d.mu.Lock()
	cfg, keys, keysGone := d.cfg, d.keys, d.keysGone
	d.mu.Unlock()
	var problems []error
	if keys == nil {
		problems = append(problems, fmt.Errorf("no identification key loaded from %s", cfg.IDHeader.KeysFile))
	}
	if keysGone != nil {
		problems = append(problems, keysGone)
	}
	// Peek reads the counter (Badger or Redis) and, for Badger, fails
	// with quota.ErrReadOnly below store.min_free_mb.
	now := d.now()
	if _, err := d.counter.Peek(context.Background(), healthAccount, quota.DayOf(now, cfg.Location), now); err != nil {
		problems = append(problems, fmt.Errorf("store: %w", err))
	}
	return errors.Join(problems...)
}

// snapshot is what a scrape reads: accounts and today's usage, keys, disk.
func (d *Daemon) snapshot() metrics.Snapshot {
	d.mu.Lock()
	cfg, keys := d.cfg, d.keys
	d.mu.Unlock()
	s := metrics.Snapshot{
		MinFreeBytes: uint64(cfg.Store.MinFreeMB) << 20,
		Backend:      string(cfg.Store.Backend),
		StateDir:     cfg.StateDir,
		Listeners:    map[string]string{"milter": cfg.Milter.Listen, "policy": cfg.Policy.Listen, "admin": cfg.Admin.Listen},
	}
	if cfg.Admin.ListenTCP != "" {
		s.Listeners["admin_tcp"] = cfg.Admin.ListenTCP
	}
	if cfg.Metrics.Listen != "" {
		s.Listeners["metrics"] = cfg.Metrics.Listen
	}
	if keys != nil {
		s.KeyIDs = keys.KeyIDs()
	}
	if free, err := badgerstore.AvailableBytes(cfg.StateDir); err == nil {
		s.FreeBytes = free
	}
	s.Accounts, s.UsedToday, s.AccountsErr = d.tallyAccounts(cfg, d.now())
	if s.AccountsErr != nil {
		d.log.Error("metrics: cannot read the accounts", "err", s.AccountsErr)
	}
	return s
}

// tallyAccounts counts the accounts (at most once in tallyTTL, see
// tallyCache) and reads the relays every login committed on now's day from
// the store's day total (no read per account).
func (d *Daemon) tallyAccounts(cfg *config.Config, now time.Time) (metrics.Tally, int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	used, err := d.acctStore.UsedOn(ctx, quota.DayOf(now, cfg.Location))
	if err != nil {
		return metrics.Tally{}, 0, err
	}
	t, err := d.accountTally(cfg, now)
	return t, used, err
}

// buildInfo is relaycap_build_info's labels: the version the binary was
// built as, the VCS commit Go recorded, the Go version.
func buildInfo(version string) metrics.BuildInfo {
	b := metrics.BuildInfo{Version: version, Commit: "unknown", GoVersion: runtime.Version()}
	if b.Version == "" {
		b.Version = "dev"
	}
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" {
				b.Commit = s.Value
			}
		}
	}
	return b
}

func unixSeconds(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }
