// Package redisstore is the quota counter on Redis or Valkey, shared by
// every relaycap host that points at it. Each call is one server-side
// script (one round trip), atomic in Redis; the keys of one account share a
// {hash tag}, so it works on Redis Cluster. Holds expire by the server's
// clock, so a host that dies strands its holds only until their TTL and
// never causes an overage. A Redis that errs, times out or fails over makes
// calls fail (the adapters answer 4.3.0); a circuit breaker keeps a dead
// Redis from stalling every session, and recovery needs no restart.
//
// Durability is Redis's: a commit is acknowledged once the primary ran it;
// what reaches disk or replicas depends on appendfsync and WaitReplicas.
package redisstore

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/relaycap/relaycap/quota"
)

// Options configure the store.
type Options struct {
	// Addrs are "host:port" or "unix:/path"; more than one means the seed
	// nodes of a Redis Cluster.
	Addrs    []string
	Password string
	TLS      bool
	// KeyPrefix starts every key; it must not contain { or }.
	KeyPrefix string
	// Timeout bounds every call, retries included.
	Timeout time.Duration
	// KeepUsage is how long a day's usage lives after its last commit.
	KeepUsage time.Duration
	// WaitReplicas, if > 0, makes every commit wait until that many
	// replicas acknowledged it (WAIT), within Timeout.
	WaitReplicas int
	Logger       *slog.Logger
}

// Store is a quota.Counter on Redis.
type Store struct {
	c       redis.UniversalClient
	cluster *redis.ClusterClient // nil for one node
	prefix  string
	timeout time.Duration
	keep    time.Duration
	wait    int
	brk     *breaker
	log     *slog.Logger
}

var _ quota.Counter = (*Store)(nil)

// markerTTL is how long a commit's marker answers retries of it.
const markerTTL = time.Hour

// Open connects and checks that Redis answers within the timeout.
func Open(ctx context.Context, o Options) (*Store, error) {
	if len(o.Addrs) == 0 || o.Timeout <= 0 || o.KeepUsage <= 0 {
		return nil, fmt.Errorf("redisstore: need addrs, a timeout and a usage lifetime: %+v", o)
	}
	if strings.ContainsAny(o.KeyPrefix, "{}") {
		return nil, fmt.Errorf("redisstore: key prefix %q contains { or }", o.KeyPrefix)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	s := &Store{
		prefix: o.KeyPrefix, timeout: o.Timeout, keep: o.KeepUsage, wait: o.WaitReplicas,
		brk: &breaker{threshold: 3, cooldown: time.Second, now: time.Now},
		log: o.Logger.With("component", "redis"),
	}
	var tlsConf *tls.Config
	if o.TLS {
		tlsConf = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if len(o.Addrs) == 1 {
		network, addr := "tcp", o.Addrs[0]
		if path, ok := strings.CutPrefix(addr, "unix:"); ok {
			network, addr = "unix", path
		}
		if tlsConf != nil && network == "tcp" {
			host, _, _ := net.SplitHostPort(addr)
			tlsConf.ServerName = host
		}
		s.c = redis.NewClient(&redis.Options{
			Network: network, Addr: addr, Password: o.Password, TLSConfig: tlsConf,
			DialTimeout: o.Timeout, ReadTimeout: o.Timeout, WriteTimeout: o.Timeout, PoolTimeout: o.Timeout,
			ContextTimeoutEnabled: true, MaxRetries: 1, DisableIdentity: true,
		})
	} else {
		s.cluster = redis.NewClusterClient(&redis.ClusterOptions{
			Addrs: o.Addrs, Password: o.Password, TLSConfig: tlsConf,
			DialTimeout: o.Timeout, ReadTimeout: o.Timeout, WriteTimeout: o.Timeout, PoolTimeout: o.Timeout,
			ContextTimeoutEnabled: true, MaxRetries: 1, DisableIdentity: true,
		})
		s.c = s.cluster
	}
	cctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	if err := s.c.Ping(cctx).Err(); err != nil {
		s.c.Close()
		return nil, fmt.Errorf("redis %s: %w", strings.Join(o.Addrs, ","), err)
	}
	return s, nil
}

// Close closes the connections.
func (s *Store) Close() error { return s.c.Close() }

// key is the name of one of account's keys: prefix{account}:kind:rest.
// Everything of one account hashes to the same cluster slot.
func (s *Store) key(account, kind, rest string) string {
	return s.prefix + "{" + account + "}:" + kind + ":" + rest
}

func member(h quota.Hold) string { return strconv.FormatInt(h.N, 10) + ":" + h.ID }

// call runs fn within the timeout and through the breaker.
func (s *Store) call(ctx context.Context, what string, fn func(context.Context) error) error {
	if !s.brk.allow() {
		return ErrUnavailable
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	err := fn(ctx)
	var refused pass
	if errors.As(err, &refused) {
		s.brk.done(false)
		return err
	}
	s.brk.done(err != nil)
	if err != nil {
		return fmt.Errorf("redis %s: %w", what, err)
	}
	return nil
}

// Reserve runs the reserve script: one round trip.
func (s *Store) Reserve(ctx context.Context, h quota.Hold, limit int64, now time.Time) (quota.Count, bool, error) {
	if err := h.Validate(now); err != nil {
		return quota.Count{}, false, err
	}
	ttl := h.Expires.Sub(now).Milliseconds()
	var res []int64
	err := s.call(ctx, "reserve", func(ctx context.Context) error {
		var err error
		res, err = reserveScript.Run(ctx, s.c,
			[]string{s.key(h.Account, "u", string(h.Day)), s.key(h.Account, "h", string(h.Day))},
			member(h), h.N, limit, max(ttl, 1)).Int64Slice()
		return err
	})
	if err != nil {
		return quota.Count{}, false, err
	}
	if len(res) != 3 {
		return quota.Count{}, false, fmt.Errorf("redis reserve: unexpected answer %v", res)
	}
	return quota.Count{Used: res[1], Reserved: res[2]}, res[0] == 1, nil
}

// Peek runs the peek script: one round trip.
func (s *Store) Peek(ctx context.Context, account string, day quota.Day, now time.Time) (quota.Count, error) {
	var res []int64
	err := s.call(ctx, "peek", func(ctx context.Context) error {
		var err error
		res, err = peekScript.Run(ctx, s.c, []string{s.key(account, "u", string(day)), s.key(account, "h", string(day))}).Int64Slice()
		return err
	})
	if err != nil {
		return quota.Count{}, err
	}
	if len(res) != 2 {
		return quota.Count{}, fmt.Errorf("redis peek: unexpected answer %v", res)
	}
	return quota.Count{Used: res[0], Reserved: res[1]}, nil
}

// Commit runs the commit script: one round trip, plus WAIT if configured.
func (s *Store) Commit(ctx context.Context, txn string, holds []quota.Hold, limit int64, now time.Time) ([]quota.DayCount, error) {
	totals, _, _, err := s.commit(ctx, txn, holds, limit, "plain", 0, false)
	return totals, err
}

// CommitRecord is Commit that reads the account's record in the same
// script and counts against its limit; nil totals (and no error) mean the
// record's status refused the commit.
func (s *Store) CommitRecord(ctx context.Context, txn string, holds []quota.Hold, fallback int64, dryRun bool, now time.Time) ([]quota.DayCount, quota.AccountRecord, bool, error) {
	return s.commit(ctx, txn, holds, 0, "record", fallback, dryRun)
}

func (s *Store) commit(ctx context.Context, txn string, holds []quota.Hold, limit int64, mode string, fallback int64, dryRun bool) ([]quota.DayCount, quota.AccountRecord, bool, error) {
	var none quota.AccountRecord
	if txn == "" || len(holds) == 0 {
		return nil, none, false, errors.New("redisstore: commit without a transaction id or holds")
	}
	account := holds[0].Account
	days := groupByDay(holds)
	dry := "0"
	if dryRun {
		dry = "1"
	}
	keys := []string{s.key(account, "c", txn), s.accountKey(account)}
	keep := s.keep
	if holds[0].Day.IsHour() { // the burst brake's hours (committed apart from days) need no history
		keep = quota.HourWindowTTL
	}
	args := []any{limit, keep.Milliseconds(), markerTTL.Milliseconds(), mode, fallback, dry}
	for _, g := range days {
		keys = append(keys, s.key(account, "u", string(g.day)), s.key(account, "h", string(g.day)))
		args = append(args, string(g.day), len(g.holds))
		for _, h := range g.holds {
			if h.Account != account {
				return nil, none, false, fmt.Errorf("redisstore: one commit for %q and %q", account, h.Account)
			}
			args = append(args, member(h))
		}
	}
	var res []string
	err := s.call(ctx, "commit", func(ctx context.Context) error {
		var err error
		res, err = s.runCommit(ctx, keys, args)
		return err
	})
	if err != nil {
		return nil, none, false, err
	}
	if len(res) != 3 {
		return nil, none, false, fmt.Errorf("redis commit: unexpected answer %v", res)
	}
	rec, found, err := decodeRecord(res[2])
	if err != nil {
		return nil, none, false, err
	}
	switch res[0] {
	case "status":
		return nil, rec, found, nil
	case "lost":
		i, _ := strconv.Atoi(res[1])
		if i < 1 || i > len(days) {
			return nil, none, false, fmt.Errorf("redis commit: unexpected answer %v", res)
		}
		return nil, rec, found, fmt.Errorf("%w: relays of %q on %s", quota.ErrHoldLost, account, days[i-1].day)
	}
	totals := strings.Split(res[1], ",")
	if len(totals) != len(days) {
		return nil, none, false, fmt.Errorf("redis commit: %d totals for %d days", len(totals), len(days))
	}
	out := make([]quota.DayCount, len(days))
	for i, g := range days {
		n, err := strconv.ParseInt(totals[i], 10, 64)
		if err != nil {
			return nil, none, false, fmt.Errorf("redis commit: total %q: %w", totals[i], err)
		}
		out[i] = quota.DayCount{Day: g.day, N: n}
	}
	if res[0] == "ok" {
		add := make([]quota.DayCount, len(days))
		for i, g := range days {
			for _, h := range g.holds {
				add[i].N += h.N
			}
			add[i].Day = g.day
		}
		s.bumpTop(ctx, account, add)
	}
	return out, rec, found, nil
}

// runCommit runs the script and, with WaitReplicas, WAIT on the same
// connection of the same node, which is what WAIT counts acknowledgements
// for.
func (s *Store) runCommit(ctx context.Context, keys []string, args []any) ([]string, error) {
	if s.wait <= 0 {
		return commitScript.Run(ctx, s.c, keys, args...).StringSlice()
	}
	var node *redis.Client
	if s.cluster != nil {
		var err error
		if node, err = s.cluster.MasterForKey(ctx, keys[0]); err != nil {
			return nil, err
		}
	} else {
		node = s.c.(*redis.Client)
	}
	// EVALSHA and WAIT on one connection: WAIT counts the replicas that
	// have this connection's writes. WAIT gets half the call's timeout, so
	// its answer arrives before the call gives up.
	pipe := func() (run, wait *redis.Cmd, err error) {
		_, err = node.Pipelined(ctx, func(p redis.Pipeliner) error {
			run = commitScript.EvalSha(ctx, p, keys, args...)
			wait = p.Do(ctx, "WAIT", s.wait, max((s.timeout/2).Milliseconds(), 1))
			return nil
		})
		return run, wait, err
	}
	run, wait, err := pipe()
	if run != nil && redis.HasErrorPrefix(run.Err(), "NOSCRIPT") {
		// A node that has not run it yet (restarted, failed over): load it
		// and run again; the commit marker counts a retry once.
		if err := commitScript.Load(ctx, node).Err(); err != nil {
			return nil, err
		}
		run, wait, err = pipe()
	}
	if err != nil {
		return nil, err
	}
	res, err := run.StringSlice()
	if err != nil {
		return nil, err
	}
	n, err := wait.Int64()
	if err != nil {
		return nil, err
	}
	if n < int64(s.wait) && len(res) > 0 && res[0] == "ok" {
		// Counted on the primary, not yet on enough replicas: refuse the
		// message. The relays stay counted (an overcharge at worst, never
		// an unaccounted relay).
		return nil, fmt.Errorf("commit reached %d of %d replicas (store.redis.wait_replicas)", n, s.wait)
	}
	return res, nil
}

// Release runs the release script: one round trip.
func (s *Store) Release(ctx context.Context, holds []quota.Hold) error {
	for len(holds) > 0 {
		account := holds[0].Account
		n := 1
		for n < len(holds) && holds[n].Account == account {
			n++
		}
		var keys []string
		var args []any
		for _, g := range groupByDay(holds[:n]) {
			keys = append(keys, s.key(account, "h", string(g.day)))
			args = append(args, len(g.holds))
			for _, h := range g.holds {
				args = append(args, member(h))
			}
		}
		err := s.call(ctx, "release", func(ctx context.Context) error {
			return releaseScript.Run(ctx, s.c, keys, args...).Err()
		})
		if err != nil {
			return err
		}
		holds = holds[n:]
	}
	return nil
}

type dayHolds struct {
	day   quota.Day
	holds []quota.Hold
}

// groupByDay groups holds by day, in the order the days first appear.
func groupByDay(holds []quota.Hold) []dayHolds {
	var out []dayHolds
next:
	for _, h := range holds {
		for i := range out {
			if out[i].day == h.Day {
				out[i].holds = append(out[i].holds, h)
				continue next
			}
		}
		out = append(out, dayHolds{h.Day, []quota.Hold{h}})
	}
	return out
}

var _ quota.RecordCounter = (*Store)(nil)

// PeekRecord runs the peek script that also reads the account's record:
// one round trip for a policy check.
func (s *Store) PeekRecord(ctx context.Context, account string, day quota.Day, now time.Time) (quota.Count, quota.AccountRecord, bool, error) {
	var res []any
	err := s.call(ctx, "peek", func(ctx context.Context) error {
		var err error
		res, err = peekRecordScript.Run(ctx, s.c, []string{s.key(account, "u", string(day)), s.key(account, "h", string(day)), s.accountKey(account)}).Slice()
		return err
	})
	if err != nil {
		return quota.Count{}, quota.AccountRecord{}, false, err
	}
	if len(res) != 3 {
		return quota.Count{}, quota.AccountRecord{}, false, fmt.Errorf("redis peek: unexpected answer %v", res)
	}
	used, held := toInt(res[0]), toInt(res[1])
	r, found, err := decodeRecord(res[2])
	return quota.Count{Used: used, Reserved: held}, r, found, err
}

// ReserveRecord runs the reserve script that reads the account's record
// and holds against its limit: one round trip per RCPT.
func (s *Store) ReserveRecord(ctx context.Context, h quota.Hold, fallback int64, dryRun bool, now time.Time) (quota.Count, quota.AccountRecord, bool, bool, error) {
	if err := h.Validate(now); err != nil {
		return quota.Count{}, quota.AccountRecord{}, false, false, err
	}
	dry := 0
	if dryRun {
		dry = 1
	}
	var res []any
	err := s.call(ctx, "reserve", func(ctx context.Context) error {
		var err error
		res, err = reserveRecordScript.Run(ctx, s.c,
			[]string{s.key(h.Account, "u", string(h.Day)), s.key(h.Account, "h", string(h.Day)), s.accountKey(h.Account)},
			member(h), h.N, max(h.Expires.Sub(now).Milliseconds(), 1), fallback, dry, string(h.Day)).Slice()
		return err
	})
	if err != nil {
		return quota.Count{}, quota.AccountRecord{}, false, false, err
	}
	if len(res) != 4 {
		return quota.Count{}, quota.AccountRecord{}, false, false, fmt.Errorf("redis reserve: unexpected answer %v", res)
	}
	r, found, err := decodeRecord(res[3])
	return quota.Count{Used: toInt(res[1]), Reserved: toInt(res[2])}, r, found, toInt(res[0]) == 1, err
}

func toInt(v any) int64 {
	n, _ := v.(int64)
	return n
}

func decodeRecord(v any) (quota.AccountRecord, bool, error) {
	var r quota.AccountRecord
	str, _ := v.(string)
	if str == "" {
		return r, false, nil
	}
	if err := json.Unmarshal([]byte(str), &r); err != nil {
		return r, false, fmt.Errorf("account record: %w", err)
	}
	return r, true, nil
}
