// Package daemon wires relaycap's parts the way `relaycap serve` runs them:
// one store, one quota engine, and the milter, policy and admin listeners
// over it. Tests start the same wiring on sockets of their own.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/relaycap/relaycap/config"
	"github.com/relaycap/relaycap/idheader"
	"github.com/relaycap/relaycap/milter"
	"github.com/relaycap/relaycap/policy"
	"github.com/relaycap/relaycap/quota"
	"github.com/relaycap/relaycap/quota/badgerstore"
	"github.com/relaycap/relaycap/sockets"
)

// DrainTimeout is how long Shutdown lets open transactions finish.
const DrainTimeout = 10 * time.Second

// Options are what the caller provides besides the config.
type Options struct {
	Logger *slog.Logger
	// Level, if set, follows log.level on reload.
	Level *slog.LevelVar
	// Now reads the clock; tests may pass their own.
	Now func() time.Time
}

// Daemon is a running relaycap.
type Daemon struct {
	log    *slog.Logger
	level  *slog.LevelVar
	store  *badgerstore.Store
	engine *quota.Engine
	milter *milter.Server
	policy *policy.Server

	milterLn, policyLn net.Listener

	mu  sync.Mutex
	cfg *config.Config

	wg   sync.WaitGroup
	errc chan error
}

// Start opens the store, listens, and serves until Shutdown. cfg must be
// valid (config.Load validates).
func Start(cfg *config.Config, o Options) (*Daemon, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	d := &Daemon{log: o.Logger, level: o.Level, cfg: cfg, errc: make(chan error, 3)}
	if err := os.MkdirAll(cfg.StateDir, 0o750); err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	store, err := badgerstore.Open(cfg.StateDir, badgerstore.Options{
		HistoryDays: cfg.Quota.HistoryDays,
		SyncWrites:  cfg.Store.SyncWrites,
		Logger:      o.Logger,
	})
	if err != nil {
		return nil, err
	}
	d.store = store
	ok := false
	defer func() {
		if !ok {
			d.closeAll()
		}
	}()
	if d.engine, err = quota.NewEngine(store, engineSettings(cfg)); err != nil {
		return nil, err
	}
	keys, err := loadKeys(cfg, o.Logger)
	if err != nil {
		return nil, err
	}
	d.milter = milter.NewServer(d.engine, milterSettings(cfg, keys), milter.Options{
		Logger: o.Logger, Now: o.Now,
		ReadTimeout: cfg.Milter.ReadTimeout, WriteTimeout: cfg.Milter.WriteTimeout,
	})
	d.policy = policy.NewServer(d.engine, policySettings(cfg), policy.Options{
		Logger: o.Logger, Now: o.Now, ReadTimeout: cfg.Policy.ReadTimeout,
	})
	if d.milterLn, err = sockets.Listen(cfg.Milter.Listen, cfg.Socket.Mode, cfg.Socket.Group); err != nil {
		return nil, fmt.Errorf("milter listener: %w", err)
	}
	if d.policyLn, err = sockets.Listen(cfg.Policy.Listen, cfg.Socket.Mode, cfg.Socket.Group); err != nil {
		return nil, fmt.Errorf("policy listener: %w", err)
	}
	d.serve("milter", func() error { return d.milter.Serve(d.milterLn) })
	d.serve("policy", func() error { return d.policy.Serve(d.policyLn) })
	ok = true
	d.log.Info("relaycap started", "milter", cfg.Milter.Listen, "policy", cfg.Policy.Listen,
		"state_dir", cfg.StateDir, "timezone", cfg.Quota.Timezone, "config", cfg.Path)
	return d, nil
}

func (d *Daemon) serve(name string, run func() error) {
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		if err := run(); err != nil && !errors.Is(err, policy.ErrServerClosed) && !isClosed(err) {
			d.errc <- fmt.Errorf("%s server: %w", name, err)
		}
	}()
}

func isClosed(err error) bool {
	return errors.Is(err, net.ErrClosed) || errors.Is(err, milter.ErrServerClosed)
}

// Err delivers a listener's fatal error.
func (d *Daemon) Err() <-chan error { return d.errc }

// MilterAddr and PolicyAddr are where the daemon listens (useful with port 0).
func (d *Daemon) MilterAddr() net.Addr { return d.milterLn.Addr() }

// PolicyAddr is the policy listener's address.
func (d *Daemon) PolicyAddr() net.Addr { return d.policyLn.Addr() }

// Engine is the quota engine the listeners share.
func (d *Daemon) Engine() *quota.Engine { return d.engine }

// Config returns the config in force.
func (d *Daemon) Config() *config.Config {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cfg
}

// Reload swaps in a new, validated config: accounts, limits, default limit,
// over_quota, the unauthenticated policy, headers, keys and log level. It
// applies all of it or, if the keys cannot be loaded, nothing. Listen
// addresses, state_dir and store options need a restart; a change to them is
// logged.
func (d *Daemon) Reload(cfg *config.Config) error {
	keys, err := loadKeys(cfg, d.log)
	if err != nil {
		return err
	}
	d.mu.Lock()
	old := d.cfg
	d.mu.Unlock()
	if err := d.engine.SetSettings(engineSettings(cfg)); err != nil {
		return err
	}
	d.milter.SetSettings(milterSettings(cfg, keys))
	d.policy.SetSettings(policySettings(cfg))
	if d.level != nil {
		d.level.Set(parseLevel(cfg.Log.Level))
	}
	for _, c := range []struct{ what, was, is string }{
		{"milter.listen", old.Milter.Listen, cfg.Milter.Listen},
		{"policy.listen", old.Policy.Listen, cfg.Policy.Listen},
		{"state_dir", old.StateDir, cfg.StateDir},
		{"log.format", old.Log.Format, cfg.Log.Format},
	} {
		if c.was != c.is {
			d.log.Warn("setting changed on reload but needs a restart", "setting", c.what, "running", c.was, "file", c.is)
		}
	}
	d.mu.Lock()
	d.cfg = cfg
	d.mu.Unlock()
	d.log.Info("config reloaded", "config", cfg.Path, "accounts", len(cfg.Quota.Accounts))
	return nil
}

// Shutdown stops taking connections, gives open transactions until ctx ends
// to finish, then closes everything; unfinished transactions are released.
func (d *Daemon) Shutdown(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); d.milter.Shutdown(ctx) }()
	go func() { defer wg.Done(); d.policy.Shutdown(ctx) }()
	wg.Wait()
	return d.closeAll()
}

func (d *Daemon) closeAll() error {
	if d.milter != nil {
		d.milter.Close()
	}
	if d.policy != nil {
		d.policy.Close()
	}
	for _, ln := range []net.Listener{d.milterLn, d.policyLn} {
		if ln != nil {
			ln.Close()
		}
	}
	d.wg.Wait()
	if d.store != nil {
		return d.store.Close()
	}
	return nil
}

func engineSettings(cfg *config.Config) quota.Settings {
	accts := make(map[string]quota.Account, len(cfg.Quota.Accounts))
	for name, a := range cfg.Quota.Accounts {
		status, _ := quota.ParseStatus(a.Status) // validated by config
		accts[name] = quota.Account{Name: name, DailyLimit: a.DailyLimit, Status: status}
	}
	return quota.Settings{Location: cfg.Location, DefaultDailyLimit: cfg.Quota.DefaultDailyLimit, Accounts: accts}
}

func policySettings(cfg *config.Config) policy.Settings {
	return policy.Settings{OverQuotaReject: cfg.Quota.OverQuota == "reject"}
}

func milterSettings(cfg *config.Config, keys *idheader.Keyring) milter.Settings {
	set := milter.Settings{
		OverQuotaReject:       cfg.Quota.OverQuota == "reject",
		RejectUnauthenticated: cfg.Milter.Unauthenticated == "reject",
		IDHeader:              cfg.IDHeader.Name,
	}
	names := make([]string, 0, len(cfg.IDHeader.Extra))
	for name := range cfg.IDHeader.Extra {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		set.Extra = append(set.Extra, milter.Header{Name: name, Value: cfg.IDHeader.Extra[name]})
	}
	if keys != nil {
		set.Seal = func(s milter.Stamp) (string, error) {
			return keys.Seal(idheader.Fields{
				Account: s.Account, Time: s.Time, QueueID: s.QueueID,
				ClientAddr: s.ClientAddr, Recipients: s.Recipients,
			}, s.MessageID)
		}
	}
	return set
}

// loadKeys loads the identification keys. A missing file is not fatal:
// relaycap runs and defers every authenticated message until a key exists
// (never a counted message without its header). A file others may read, or
// a broken one, is fatal: the operator must fix it.
func loadKeys(cfg *config.Config, log *slog.Logger) (*idheader.Keyring, error) {
	keys, err := idheader.LoadKeyring(cfg.IDHeader.KeysFile)
	if errors.Is(err, fs.ErrNotExist) {
		log.Error("no identification keys: authenticated mail is deferred (451 4.3.0) until a key exists",
			"keys_file", cfg.IDHeader.KeysFile,
			"fix", "relaycap id keygen --keys-file "+cfg.IDHeader.KeysFile+", then reload (SIGHUP)")
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return keys, nil
}

func parseLevel(s string) slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return slog.LevelInfo
	}
	return l
}
