// Package config defines relaycap's configuration: the Config struct, its
// one table of defaults, a strict loader (flags > RELAYCAP_* env > YAML file
// > defaults) and a validator that reports every problem at once.
//
// Environment variables are EnvPrefix, "_", and the key's sections joined
// with "_", upper case: RELAYCAP_STATE_DIR, RELAYCAP_MILTER_LISTEN,
// RELAYCAP_QUOTA_DEFAULT_DAILY_LIMIT. Maps (quota.accounts, id_header.extra)
// come only from files.
//
// Load is pure: it returns a fresh *Config and keeps no globals, so a SIGHUP
// reload is another Load whose result is swapped in only if it succeeded.
package config

import (
	"io/fs"
	"strings"
	"time"

	_ "time/tzdata" // days are counted in a configured zone; don't depend on the host's tz database

	"go.yaml.in/yaml/v3"

	"github.com/relaycap/relaycap/quota"
)

// DefaultPath is the file Load reads when it is given no path and the file exists.
const DefaultPath = "/etc/relaycap/relaycap.yaml"

// Config is relaycap's whole configuration. The mapstructure tags are the
// YAML keys.
type Config struct {
	StateDir string         `mapstructure:"state_dir"`
	Milter   MilterConfig   `mapstructure:"milter"`
	Policy   PolicyConfig   `mapstructure:"policy"`
	Admin    AdminConfig    `mapstructure:"admin"`
	Metrics  MetricsConfig  `mapstructure:"metrics"`
	Quota    QuotaConfig    `mapstructure:"quota"`
	IDHeader IDHeaderConfig `mapstructure:"id_header"`
	Store    StoreConfig    `mapstructure:"store"`
	Log      LogConfig      `mapstructure:"log"`
	Socket   SocketConfig   `mapstructure:"socket"`
	Notify   NotifyConfig   `mapstructure:"notify"`
	Abuse    AbuseConfig    `mapstructure:"abuse"`

	// Location is Quota.Timezone, loaded by Load once the config is valid.
	Location *time.Location `mapstructure:"-"`
	// Path is the file that was loaded, "" for built-in defaults.
	Path string `mapstructure:"-"`
}

// MilterConfig is the milter listener (Postfix smtpd_milters).
type MilterConfig struct {
	Listen string `mapstructure:"listen"`
	// Unauthenticated is what to do with mail that has no SASL login.
	Unauthenticated Unauthenticated `mapstructure:"unauthenticated"`
	ReadTimeout     time.Duration   `mapstructure:"read_timeout"`
	WriteTimeout    time.Duration   `mapstructure:"write_timeout"`
}

// Unauthenticated is milter.unauthenticated.
type Unauthenticated string

// The values of milter.unauthenticated.
const (
	UnauthenticatedAccept Unauthenticated = "accept" // pass it untouched; Postfix's relay rules decide
	UnauthenticatedReject Unauthenticated = "reject" // 530 5.7.0 at MAIL
)

// OverQuota is quota.over_quota: how an exhausted quota is answered.
type OverQuota string

// The values of quota.over_quota.
const (
	OverQuotaDefer  OverQuota = "defer"  // 4xx: the client retries
	OverQuotaReject OverQuota = "reject" // 5xx: the client gives up
)

// PolicyConfig is the Postfix policy delegation listener (check_policy_service).
type PolicyConfig struct {
	Listen      string        `mapstructure:"listen"`
	ReadTimeout time.Duration `mapstructure:"read_timeout"`
}

// AdminConfig is the admin API listener. Load sets an empty Listen to
// "unix:<state_dir>/admin.sock". ListenTCP, if set, is a second listener
// for a billing system on another host; it needs TokenFile.
type AdminConfig struct {
	Listen    string `mapstructure:"listen"`
	ListenTCP string `mapstructure:"listen_tcp"`
	TokenFile string `mapstructure:"token_file"`
}

// MetricsConfig is the HTTP listener for Prometheus (/metrics) and load
// balancers (/healthz).
type MetricsConfig struct {
	// Listen is off when empty. 10085 is relaycap's port beyond the
	// Prometheus wiki's exporter range 9100-9999, which is full.
	Listen string `mapstructure:"listen"`
}

// QuotaConfig holds the daily limits.
type QuotaConfig struct {
	Timezone          string    `mapstructure:"timezone"`
	DefaultDailyLimit int64     `mapstructure:"default_daily_limit"`
	OverQuota         OverQuota `mapstructure:"over_quota"`
	// Mode is enforce, or dry_run: limits are counted and logged but not
	// applied.
	Mode Mode `mapstructure:"mode"`
	// DefaultHourlyLimit caps one clock hour of every account without an
	// hourly_limit of its own; 0 = none.
	DefaultHourlyLimit int64 `mapstructure:"default_hourly_limit"`
	// BurstAction is what an hourly limit reached does besides deferring.
	BurstAction BurstAction `mapstructure:"burst_action"`
	HistoryDays int         `mapstructure:"history_days"`
	// AccountsFile, if set, names a YAML file of more accounts; Load makes a
	// relative path relative to the config file's directory and merges its
	// accounts into Accounts.
	AccountsFile string `mapstructure:"accounts_file"`
	// Accounts are quota.accounts and the accounts file's, names in lower
	// case (logins are case-insensitive). In YAML an account is either a
	// bare limit ("alice: 500") or a mapping ("bob: {daily_limit: 10,
	// status: suspended, dry_run: true}"; status active and dry_run false
	// if not given; dry_run puts this account's limits in dry run whatever
	// quota.mode says). Load reads them itself, not through viper: a
	// provider has a million (the tag names the key, it never decodes).
	Accounts *quota.FileAccounts `mapstructure:"accounts"`
}

// IDHeaderConfig is the identification header added to every relayed message.
type IDHeaderConfig struct {
	Name     string `mapstructure:"name"`
	KeysFile string `mapstructure:"keys_file"`
	// Extra headers to add, name -> value. Load keeps the names' case as
	// written in the file.
	Extra map[string]string `mapstructure:"extra"`
}

// StoreConfig tunes the store.
type StoreConfig struct {
	Backend    StoreBackend `mapstructure:"backend"`
	SyncWrites bool         `mapstructure:"sync_writes"`
	// MinFreeMB is the free space, in MiB, kept on state_dir's filesystem.
	MinFreeMB int64       `mapstructure:"min_free_mb"`
	Redis     RedisConfig `mapstructure:"redis"`
}

// StoreBackend is store.backend: where usage and reservations are counted.
type StoreBackend string

// The backends.
const (
	BackendBadger StoreBackend = "badger" // embedded, one host
	BackendRedis  StoreBackend = "redis"  // Redis or Valkey shared by several hosts
)

// RedisConfig is store.redis, used when the backend is redis.
type RedisConfig struct {
	// Addrs are host:port or unix:/path; several are the seeds of a
	// Redis Cluster.
	Addrs        []string `mapstructure:"addrs"`
	PasswordFile string   `mapstructure:"password_file"`
	TLS          bool     `mapstructure:"tls"`
	KeyPrefix    string   `mapstructure:"key_prefix"`
	// HoldTTL is how long a reservation lives without its commit.
	HoldTTL time.Duration `mapstructure:"hold_ttl"`
	// Timeout bounds each call; then the recipient or message gets 4.3.0.
	Timeout time.Duration `mapstructure:"timeout"`
	// WaitReplicas, if > 0, makes each commit wait for that many replicas.
	WaitReplicas int64 `mapstructure:"wait_replicas"`
}

// LogConfig selects the slog handler.
type LogConfig struct {
	Level  string `mapstructure:"level"`  // debug, info, warn, error
	Format string `mapstructure:"format"` // text, json
}

// SocketConfig applies to the unix sockets relaycap listens on.
type SocketConfig struct {
	// Mode is written in YAML as an octal string ("0660").
	Mode fs.FileMode `mapstructure:"mode"`
	// Group owns the sockets; "" leaves the group unchanged.
	Group string `mapstructure:"group"`
}

// keyDelim separates viper key sections. Not ".", because account names are
// often email addresses.
const keyDelim = "::"

type setting struct {
	key   string // sections joined by keyDelim
	val   any    // as it would be written in YAML
	apply applies
	doc   string
}

// applies says when a changed setting takes effect.
type applies bool

const (
	onReload  applies = false // SIGHUP applies it
	onRestart applies = true  // a reload keeps the running value (KeepRestartOnly)
)

// defaults is the one table of settings: viper defaults, env names,
// DefaultYAML and the settings a reload keeps all come from it. Every
// Config field has a row.
var defaults = []setting{
	{"state_dir", "./relaycap-data", onRestart, "Database and admin socket live here."},
	{"milter::listen", "inet:127.0.0.1:10032", onRestart, "Postfix smtpd_milters endpoint: unix:/path or inet:host:port."},
	{"milter::unauthenticated", string(UnauthenticatedAccept), onReload, "Mail without a SASL login: accept (untouched) or reject."},
	{"milter::read_timeout", "1h", onRestart, "Ends a milter connection silent this long. relaycap does not ask for the body,\nso this must outlast the upload of the largest message."},
	{"milter::write_timeout", "30s", onRestart, ""},
	{"policy::listen", "inet:127.0.0.1:10031", onRestart, "Postfix check_policy_service endpoint."},
	{"policy::read_timeout", "5m", onRestart, "Ends an idle policy connection; Postfix reconnects as needed."},
	{"admin::listen", "", onRestart, "Admin API (the CLI, a local billing system); empty means unix:<state_dir>/admin.sock.\nThe caller's uid is logged and recorded in the audit trail."},
	{"admin::listen_tcp", "", onRestart, "Optional inet:host:port for a billing system on another host; needs token_file."},
	{"admin::token_file", "", onRestart, "Bearer token for listen_tcp: one line, not readable by others (mode 600 or 640)."},
	{"metrics::listen", "", onRestart, "Prometheus /metrics and /healthz, e.g. inet:127.0.0.1:10085; empty turns them off."},
	{"quota::timezone", "America/New_York", onRestart, "Days are calendar days in this IANA zone."},
	{"quota::default_daily_limit", 0, onReload, "Limit of a login that has no account; 0 rejects it."},
	{"quota::over_quota", string(OverQuotaDefer), onReload, "defer (4xx, the client retries) or reject (5xx)."},
	{"quota::default_hourly_limit", 0, onReload, "Relays per clock hour of an account without hourly_limit (the burst brake); 0 = none."},
	{"quota::burst_action", string(BurstDefer), onRestart, "An hourly limit reached: defer (450 4.7.1 until the next hour), or suspend\n(defer, and suspend a store-managed account until an operator resumes it)."},
	{"quota::mode", string(ModeEnforce), onReload, "enforce, or dry_run: limits are counted and logged (would_refuse) but the mail goes\nout; suspended and terminated accounts are still refused."},
	{"quota::history_days", 400, onRestart, "Days of usage history kept."},
	{"quota::accounts_file", "", onReload, "Optional YAML file of more accounts, same shape as accounts; relative to this file."},
	{"quota::accounts", map[string]any{}, onReload, "login: limit, or login: {daily_limit: N, status: active|suspended|terminated,\nhourly_limit: N, dry_run: false}. Names are case-insensitive."},
	{"id_header::name", "X-Relay-ID", onReload, ""},
	{"id_header::keys_file", "/etc/relaycap/id.keys", onReload, ""},
	{"id_header::extra", map[string]any{}, onReload, "More headers to add to relayed mail: name: value."},
	{"store::backend", string(BackendBadger), onRestart, "badger (embedded, one host) or redis (Redis/Valkey shared by several hosts)."},
	{"store::sync_writes", true, onRestart, "Sync every commit to disk."},
	{"store::min_free_mb", 128, onRestart, "Below this much free space (MiB) on state_dir's filesystem relaycap stops\nwriting and answers with temporary failures (4.3.0); 0 turns the check off."},
	{"store::redis::addrs", []string{"127.0.0.1:6379"}, onRestart, "host:port or unix:/path; several = the seed nodes of a Redis Cluster."},
	{"store::redis::password_file", "", onRestart, "File with the password (AUTH), one line; must not be readable by others."},
	{"store::redis::tls", false, onRestart, ""},
	{"store::redis::key_prefix", "relaycap:", onRestart, "Starts every key; no { or }."},
	{"store::redis::hold_ttl", "1h", onRestart, "A reservation without its commit expires after this; >= milter.read_timeout\n(no milter callback arrives during DATA). A dead host strands capacity this long."},
	{"store::redis::timeout", "300ms", onRestart, "Per call; then 4.3.0 (never an accept)."},
	{"store::redis::wait_replicas", 0, onRestart, "If > 0, every commit waits (WAIT) for this many replicas, within timeout."},
	{"log::level", "info", onReload, "debug, info, warn or error."},
	{"log::format", "text", onRestart, "text or json."},
	{"socket::mode", "0660", onRestart, "Permissions of the unix sockets (octal, quoted)."},
	{"socket::group", "", onRestart, "Group of the unix sockets; empty leaves it unchanged."},
	{"notify::webhook_url", "", onRestart, "Customer events (thresholds, refusals, sanctions, brakes) are POSTed here,\nsigned; empty sends none."},
	{"notify::secret_file", "", onRestart, "The HMAC-SHA256 key of the signature; not readable by others."},
	{"notify::thresholds", []int{80, 100}, onRestart, "Percents of the daily limit that send an event, once per account and day."},
	{"abuse::auto_suspend_after", 0, onRestart, "Complaints (relaycap abuse report) within window that suspend a store-managed\naccount; 0 = never."},
	{"abuse::window", "24h", onRestart, ""},
}

// DefaultYAML returns the defaults table as a commented YAML config file.
func DefaultYAML() string {
	root := &yaml.Node{Kind: yaml.MappingNode}
	sections := map[string]*yaml.Node{}
	for _, s := range defaults {
		parent, path := root, strings.Split(s.key, keyDelim)
		for i, sec := range path[:len(path)-1] {
			full := strings.Join(path[:i+1], keyDelim)
			if sections[full] == nil {
				sections[full] = &yaml.Node{Kind: yaml.MappingNode}
				parent.Content = append(parent.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: sec}, sections[full])
			}
			parent = sections[full]
		}
		name := path[len(path)-1]
		val := new(yaml.Node)
		if err := val.Encode(s.val); err != nil {
			panic(err) // the table holds plain scalars and empty maps
		}
		key := &yaml.Node{Kind: yaml.ScalarNode, Value: name, HeadComment: s.doc}
		parent.Content = append(parent.Content, key, val)
	}
	out, err := yaml.Marshal(root)
	if err != nil {
		panic(err)
	}
	return string(out)
}
