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
	"sort"
	"sync"
	"time"

	"github.com/relaycap/relaycap/admin"
	"github.com/relaycap/relaycap/config"
	"github.com/relaycap/relaycap/idheader"
	"github.com/relaycap/relaycap/metrics"
	"github.com/relaycap/relaycap/milter"
	"github.com/relaycap/relaycap/notify"
	"github.com/relaycap/relaycap/policy"
	"github.com/relaycap/relaycap/quota"
	"github.com/relaycap/relaycap/quota/badgerstore"
	"github.com/relaycap/relaycap/quota/redisstore"
	"github.com/relaycap/relaycap/sockets"
)

// accountCacheSize bounds the account lookups kept in memory: the
// accounts active at one time, a few MB at most.
const accountCacheSize = 16384

// DrainTimeout is how long Shutdown lets open transactions finish.
const DrainTimeout = 10 * time.Second

// Options are what the caller provides besides the config.
type Options struct {
	Logger *slog.Logger
	// Level, if set, follows log.level on reload.
	Level *slog.LevelVar
	// Now reads the clock; tests may pass their own.
	Now func() time.Time
	// NotifyPoll is how often the webhook deliverer looks for retries
	// due; 0 takes notify's default.
	NotifyPoll time.Duration
	// Version is what relaycap_build_info reports.
	Version string
}

// Daemon is a running relaycap.
type Daemon struct {
	log    *slog.Logger
	level  *slog.LevelVar
	store  *badgerstore.Store
	engine *quota.Engine
	milter *milter.Server
	policy *policy.Server
	admin  *admin.Server
	now    func() time.Time

	counter       quota.Counter     // the hot path: Local over Badger, or Redis
	redis         *redisstore.Store // nil unless store.backend is redis
	metrics       *metrics.Metrics
	metricsSrv    *metrics.Server // nil when metrics.listen is empty
	acctStore     quota.Accounts  // Badger's, or Redis's with the redis backend
	accountsStore quota.Accounts  // acctStore timed, behind the account cache for Badger, its changes counted for the tally
	status        statusState
	tally         tallyCache

	milterLn, policyLn, adminLn, adminTCPLn, metricsLn net.Listener

	// notifier is nil without a webhook; the deliverer runs until closeAll.
	notifier    *notify.Notifier
	deliverer   *notify.Deliverer
	stopDeliver context.CancelFunc
	delivered   chan struct{}

	mu   sync.Mutex
	cfg  *config.Config
	keys *idheader.Keyring // nil: none loaded, authenticated mail is deferred
	// keysGone is why the last reload refused the keys file (missing or
	// without a key) while keys ran; nil once a reload reads a key again.
	keysGone error

	wg   sync.WaitGroup
	errc chan error
}

// libraryLog routes go-milter's process-wide warnings once, to the logger
// of the first daemon the process starts.
var libraryLog sync.Once

// Start opens the store, listens, and serves until Shutdown. cfg must be
// valid (config.Load validates).
func Start(cfg *config.Config, o Options) (*Daemon, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	// The policy service reads the real clock once per request anyway and
	// decides with that reading unless a test's clock is given.
	policyNow := o.Now
	if o.Now == nil {
		o.Now = time.Now
	}
	libraryLog.Do(func() { milter.LogLibraryWarnings(o.Logger.With("component", "milter")) })
	keys, token, err := preflight(cfg)
	if err != nil {
		return nil, err
	}
	if keys == nil {
		logNoKeys(cfg, o.Logger)
	}
	d := &Daemon{log: o.Logger, level: o.Level, cfg: cfg, errc: make(chan error, 5), keys: keys, now: o.Now,
		metrics: metrics.New(buildInfo(o.Version))}
	d.startStatus(o.Version)
	// Open creates the directory.
	store, err := badgerstore.Open(cfg.StateDir, badgerstore.Options{
		HistoryDays:  cfg.Quota.HistoryDays,
		SyncWrites:   cfg.Store.SyncWrites,
		MinFreeBytes: uint64(cfg.Store.MinFreeMB) << 20,
		Logger:       o.Logger,
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
	if d.counter, err = d.openCounter(cfg, store); err != nil {
		return nil, err
	}
	if d.redis != nil {
		// Shared by every host, so not cached: an admin change on one host
		// applies to the next RCPT on every host.
		d.acctStore = d.redis
		d.accountsStore = d.metrics.WrapAccounts(d.redis)
	} else {
		// This process alone owns the Badger directory, and every change of
		// an account goes through the admin API below: lookups can come
		// from memory.
		d.acctStore = store
		d.accountsStore = quota.NewAccountCache(d.metrics.WrapAccounts(store), accountCacheSize)
	}
	d.accountsStore = changeCounter{d.accountsStore, &d.tally.changes}
	if d.engine, err = quota.NewEngine(d.counter, d.accountsStore, engineSettings(cfg)); err != nil {
		return nil, err
	}
	if err := d.startNotify(cfg, o); err != nil {
		return nil, err
	}
	events := d.mailEvents(cfg)
	d.milter = milter.NewServer(d.engine, milterSettings(cfg, keys), milter.Options{
		Logger: o.Logger, Now: o.Now,
		ReadTimeout: cfg.Milter.ReadTimeout, WriteTimeout: cfg.Milter.WriteTimeout,
		Events: events, Observer: d.metrics.Milter(),
	})
	d.policy = policy.NewServer(d.engine, policySettings(cfg), policy.Options{
		Logger: o.Logger, Now: policyNow, ReadTimeout: cfg.Policy.ReadTimeout, Events: events,
		Observer: d.metrics.Policy(),
	})
	if d.milterLn, err = sockets.Listen(cfg.Milter.Listen, cfg.Socket.Mode, cfg.Socket.Group); err != nil {
		return nil, fmt.Errorf("milter listener: %w", err)
	}
	if d.policyLn, err = sockets.Listen(cfg.Policy.Listen, cfg.Socket.Mode, cfg.Socket.Group); err != nil {
		return nil, fmt.Errorf("policy listener: %w", err)
	}
	d.admin = admin.NewServer(admin.Options{Engine: d.engine, Accounts: d.accountsStore, Logger: o.Logger, Now: o.Now, ConfigPath: cfg.Path,
		AutoSuspendAfter: cfg.Abuse.AutoSuspendAfter, ComplaintWindow: cfg.Abuse.Window, OnAudit: d.statusEvent,
		Observer: d.metrics.Admin(), Status: d.adminStatus})
	d.metrics.Admin().Routes(routePatterns(d.admin.Routes()))
	if d.adminLn, err = sockets.Listen(cfg.Admin.Listen, cfg.Socket.Mode, cfg.Socket.Group); err != nil {
		return nil, fmt.Errorf("admin listener: %w", err)
	}
	if cfg.Admin.ListenTCP != "" {
		if d.adminTCPLn, err = sockets.Listen(cfg.Admin.ListenTCP, cfg.Socket.Mode, cfg.Socket.Group); err != nil {
			return nil, fmt.Errorf("admin TCP listener: %w", err)
		}
	}
	if err := d.startMetrics(cfg); err != nil {
		return nil, err
	}
	d.serve("milter", func() error { return d.milter.Serve(d.milterLn) })
	d.serve("policy", func() error { return d.policy.Serve(d.policyLn) })
	d.serve("admin", func() error { return d.admin.Serve(d.adminLn) })
	if d.adminTCPLn != nil {
		d.serve("admin TCP", func() error { return d.admin.ServeToken(d.adminTCPLn, token) })
	}
	ok = true
	d.log.Info("relaycap started", "milter", cfg.Milter.Listen, "policy", cfg.Policy.Listen,
		"admin", cfg.Admin.Listen, "admin_tcp", cfg.Admin.ListenTCP, "metrics", cfg.Metrics.Listen,
		"state_dir", cfg.StateDir, "timezone", cfg.Quota.Timezone, "config", cfg.Path)
	return d, nil
}

func (d *Daemon) serve(name string, run func() error) {
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		if err := run(); err != nil && !isClosed(err) {
			d.errc <- fmt.Errorf("%s server: %w", name, err)
		}
	}()
}

// isClosed tells the end of a listener we closed from a failure.
func isClosed(err error) bool {
	return errors.Is(err, net.ErrClosed) || errors.Is(err, milter.ErrServerClosed) || errors.Is(err, policy.ErrServerClosed) ||
		errors.Is(err, admin.ErrServerClosed)
}

// Err delivers a listener's fatal error.
func (d *Daemon) Err() <-chan error { return d.errc }

// NotifyStats counts the webhook's deliveries; zero without a webhook.
func (d *Daemon) NotifyStats() notify.Stats {
	if d.deliverer == nil {
		return notify.Stats{}
	}
	return d.deliverer.Stats()
}

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
// applies all of it or, if the keys cannot be loaded, nothing: a keys file
// that vanished keeps the running keys rather than deferring all mail (and
// turns /healthz 503 until a reload finds a key again).
// Settings that need a restart keep their running values; a change to one
// is logged.
func (d *Daemon) Reload(cfg *config.Config) (err error) {
	defer func() { d.reloaded(err) }()
	d.mu.Lock()
	old, oldKeys := d.cfg, d.keys
	d.mu.Unlock()
	keys, err := loadKeys(cfg, oldKeys, d.log)
	d.mu.Lock()
	d.keysGone = keysGoneErr(cfg, err)
	d.mu.Unlock()
	if err != nil {
		return err
	}
	next := *cfg
	keepRestartOnly(&next, old, d.log)
	if err := d.engine.SetSettings(engineSettings(&next)); err != nil {
		return err
	}
	d.milter.SetSettings(milterSettings(&next, keys))
	d.policy.SetSettings(policySettings(&next))
	if d.level != nil {
		d.level.Set(parseLevel(next.Log.Level))
	}
	d.mu.Lock()
	d.cfg, d.keys = &next, keys
	d.mu.Unlock()
	d.log.Info("config reloaded", "config", next.Path, "accounts", next.Quota.Accounts.Len())
	return nil
}

// keepRestartOnly keeps the running values of the settings a reload
// cannot change (config's defaults table marks them) and warns about each
// one the file changed. The zone is among them: switching it mid-day would
// start a fresh day, and a fresh quota, at once.
func keepRestartOnly(next, running *config.Config, log *slog.Logger) {
	for _, c := range config.KeepRestartOnly(next, running) {
		log.Warn("setting changed in the file but needs a restart; keeping the running value",
			"setting", c.Key, "running", c.Running, "file", c.File)
	}
}

// Shutdown stops taking connections, gives open transactions until ctx ends
// to finish, then closes everything; unfinished transactions are released.
func (d *Daemon) Shutdown(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); d.milter.Shutdown(ctx) }()
	go func() { defer wg.Done(); d.policy.Shutdown(ctx) }()
	go func() { defer wg.Done(); d.admin.Shutdown(ctx) }()
	wg.Wait()
	if d.metricsSrv != nil {
		d.metricsSrv.Shutdown(ctx)
	}
	return d.closeAll()
}

// sessionGrace bounds the wait for sessions whose connections were just
// closed to leave their callbacks (and the store) alone.
const sessionGrace = 2 * time.Second

func (d *Daemon) closeAll() error {
	if d.milter != nil {
		d.milter.Close()
	}
	if d.policy != nil {
		d.policy.Close()
	}
	if d.admin != nil {
		// Requests still running after Shutdown's grace are cut off: the
		// store is about to close under them.
		ctx, cancel := context.WithTimeout(context.Background(), sessionGrace)
		d.admin.Shutdown(ctx)
		cancel()
	}
	if d.metricsSrv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		d.metricsSrv.Shutdown(ctx)
		cancel()
	}
	for _, ln := range []net.Listener{d.milterLn, d.policyLn, d.adminLn, d.adminTCPLn, d.metricsLn} {
		if ln != nil {
			ln.Close()
		}
	}
	d.wg.Wait()
	// A session still inside a callback may be about to commit; the store
	// must stay open until it is out.
	ctx, cancel := context.WithTimeout(context.Background(), sessionGrace)
	defer cancel()
	if d.milter != nil {
		if err := d.milter.Wait(ctx); err != nil {
			d.log.Error("milter sessions still running at shutdown", "err", err)
		}
	}
	if d.policy != nil {
		d.policy.Wait(ctx)
	}
	d.stopNotify()
	if d.redis != nil {
		d.redis.Close()
	}
	if d.store != nil {
		return d.store.Close()
	}
	return nil
}

func engineSettings(cfg *config.Config) quota.Settings {
	return quota.Settings{Location: cfg.Location, DefaultDailyLimit: cfg.Quota.DefaultDailyLimit, Accounts: cfg.Quota.Accounts,
		DefaultHourlyLimit: cfg.Quota.DefaultHourlyLimit,
		DryRun:             cfg.Quota.Mode == config.ModeDryRun, HoldTTL: holdTTL(cfg)}
}

// holdTTL is how long a reservation outlives its RCPT. No milter callback
// arrives during DATA, so it must outlast milter.read_timeout (config
// checks store.redis.hold_ttl for that); on Badger the holds live in the
// process and end with their session anyway.
func holdTTL(cfg *config.Config) time.Duration {
	if cfg.Store.Backend == config.BackendRedis {
		return cfg.Store.Redis.HoldTTL
	}
	return cfg.Milter.ReadTimeout + cfg.Milter.WriteTimeout + time.Minute
}

func policySettings(cfg *config.Config) policy.Settings {
	return policy.Settings{OverQuotaReject: cfg.Quota.OverQuota == config.OverQuotaReject}
}

func milterSettings(cfg *config.Config, keys *idheader.Keyring) milter.Settings {
	set := milter.Settings{
		OverQuotaReject:       cfg.Quota.OverQuota == config.OverQuotaReject,
		RejectUnauthenticated: cfg.Milter.Unauthenticated == config.UnauthenticatedReject,
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
		set.Seal = func(s milter.Stamp) (string, error) { return seal(keys, s) }
	}
	return set
}

// seal makes the token of one message; idheader cuts a login too long
// for the token.
func seal(keys *idheader.Keyring, s milter.Stamp) (string, error) {
	return keys.SealFitting(idheader.Fields{
		Account: s.Account, Time: s.Time, QueueID: s.QueueID,
		ClientAddr: s.ClientAddr, Recipients: s.Recipients,
	}, s.MessageID)
}

// loadKeys loads the identification keys. A missing file, or one with no
// key yet, is not fatal while no keys are running: relaycap runs and
// defers every authenticated message until a key exists (never a counted
// message without its header). Once keys run, either is an error, so a
// reload keeps them. A file others may read, or a broken one, is always an
// error.
func loadKeys(cfg *config.Config, running *idheader.Keyring, log *slog.Logger) (*idheader.Keyring, error) {
	keys, err := idheader.LoadKeyring(cfg.IDHeader.KeysFile)
	if noKeys(err) && running == nil {
		logNoKeys(cfg, log)
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return keys, nil
}

// noKeys tells a keys file that is missing or holds no key yet.
func noKeys(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, idheader.ErrNoKeys)
}

// keysGoneErr is what /healthz says when a reload found the keys file
// missing or holding no key while a key runs (loadKeys refused it): mail
// is still sealed, but the host is one restart away from deferring all
// authenticated mail, so a load balancer should take it out of rotation.
func keysGoneErr(cfg *config.Config, err error) error {
	var what string
	switch {
	case errors.Is(err, fs.ErrNotExist):
		what = "is missing"
	case errors.Is(err, idheader.ErrNoKeys):
		what = "holds no key"
	default:
		return nil
	}
	return fmt.Errorf("keys file %s %s (mail is still sealed with the key loaded before; a restart would defer all authenticated mail)",
		cfg.IDHeader.KeysFile, what)
}

func logNoKeys(cfg *config.Config, log *slog.Logger) {
	log.Error("no identification keys: authenticated mail is deferred (451 4.3.0) until a key exists",
		"keys_file", cfg.IDHeader.KeysFile,
		"fix", "relaycap id keygen --keys-file "+cfg.IDHeader.KeysFile+", then reload (SIGHUP)")
}

func parseLevel(s string) slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return slog.LevelInfo
	}
	return l
}
