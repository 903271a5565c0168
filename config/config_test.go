package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"

	"github.com/relaycap/relaycap/quota"
	"github.com/relaycap/relaycap/sockets"
)

// isolate hides RELAYCAP_* variables and any /etc/relaycap file from a test.
func isolate(t testing.TB) {
	t.Helper()
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, EnvPrefix+"_") {
			t.Setenv(k, "") // viper ignores empty variables
		}
	}
	old := systemPath
	systemPath = filepath.Join(t.TempDir(), "missing.yaml")
	t.Cleanup(func() { systemPath = old })
}

func writeFile(t testing.TB, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func emptyFlags() *pflag.FlagSet {
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	BindFlags(fs)
	return fs
}

// same compares configs; Locations are compared by name.
func acct(name string, limit int64, st quota.Status) quota.Account {
	return quota.Account{Name: name, DailyLimit: limit, Status: st, Source: quota.FromFile}
}

func dryRun(a quota.Account) quota.Account { a.DryRun = true; return a }

func hourly(a quota.Account, n int64) quota.Account { a.HourlyLimit = n; return a }

// table is the FileAccounts of the accounts.
func table(accounts ...quota.Account) *quota.FileAccounts {
	var b quota.FileAccountsBuilder
	for _, a := range accounts {
		b.Add([]byte(a.Name), a.DailyLimit, a.Status, a.DryRun)
		b.SetHourly(a.HourlyLimit)
	}
	t, _ := b.Build()
	return t
}

func limit(c *Config, name string) int64 {
	a, _ := c.Quota.Accounts.Get(name)
	return a.DailyLimit
}

func same(t *testing.T, got, want *Config) {
	t.Helper()
	if got.Location == nil || want.Location == nil || got.Location.String() != want.Location.String() {
		t.Errorf("Location = %v, want %v", got.Location, want.Location)
	}
	g, w := *got, *want
	g.Location, w.Location = nil, nil
	if !reflect.DeepEqual(g, w) {
		t.Errorf("config\n got %+v\nwant %+v", g, w)
	}
}

func mustLoc(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func TestDefaults(t *testing.T) {
	isolate(t)
	got, err := Load("", emptyFlags())
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		StateDir: "./relaycap-data",
		Milter:   MilterConfig{Listen: "inet:127.0.0.1:10032", Unauthenticated: "accept", ReadTimeout: time.Hour, WriteTimeout: 30 * time.Second},
		Policy:   PolicyConfig{Listen: "inet:127.0.0.1:10031", ReadTimeout: 5 * time.Minute},
		Admin:    AdminConfig{Listen: "unix:relaycap-data/admin.sock"},
		Quota: QuotaConfig{
			Timezone: "America/New_York", DefaultDailyLimit: 0, OverQuota: "defer", HistoryDays: 400,
			Mode: ModeEnforce, BurstAction: BurstDefer,
			Accounts: table(),
		},
		IDHeader: IDHeaderConfig{Name: "X-Relay-ID", KeysFile: "/etc/relaycap/id.keys", Extra: map[string]string{}},
		Store: StoreConfig{Backend: BackendBadger, SyncWrites: true, MinFreeMB: 128, Redis: RedisConfig{
			Addrs: []string{"127.0.0.1:6379"}, KeyPrefix: "relaycap:", HoldTTL: time.Hour, Timeout: 300 * time.Millisecond}},
		Log:      LogConfig{Level: "info", Format: "text"},
		Socket:   SocketConfig{Mode: 0o660},
		Notify:   NotifyConfig{Thresholds: []int{80, 100}},
		Abuse:    AbuseConfig{Window: 24 * time.Hour},
		Location: mustLoc(t, "America/New_York"),
	}
	same(t, got, want)
	same(t, Defaults(), want)
}

func TestDefaultPathUsedWhenPresent(t *testing.T) {
	isolate(t)
	systemPath = writeFile(t, t.TempDir(), "relaycap.yaml", "log: {level: warn}\n")
	c, err := Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Path != systemPath || c.Log.Level != "warn" {
		t.Errorf("Path %q, log.level %q; want %q, warn", c.Path, c.Log.Level, systemPath)
	}
}

// TestReloadNeedsTheFileItStartedFrom: a daemon started on the default file
// must not reload onto the built-in defaults (no accounts: every customer
// refused) because the file went away; one started on the defaults picks
// up a default file that has appeared since.
func TestReloadNeedsTheFileItStartedFrom(t *testing.T) {
	isolate(t)
	systemPath = writeFile(t, t.TempDir(), "relaycap.yaml", "quota: {accounts: {alice: 5}}\n")
	running, err := Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(systemPath); err != nil {
		t.Fatal(err)
	}
	if c, err := Reload(running, nil); err == nil {
		t.Fatalf("reload without the file it started from: %d accounts, want an error", c.Quota.Accounts.Len())
	}

	onDefaults, err := Load("", nil)
	if err != nil || onDefaults.Path != "" {
		t.Fatalf("no file: %v, path %q", err, onDefaults.Path)
	}
	writeFile(t, filepath.Dir(systemPath), "relaycap.yaml", "quota: {accounts: {bob: 7}}\n")
	c, err := Reload(onDefaults, nil)
	if err != nil || limit(c, "bob") != 7 {
		t.Fatalf("reload after the default file appeared: %v", err)
	}
}

func TestExplicitPathMustExist(t *testing.T) {
	isolate(t)
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"), nil)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("err = %v, want a not-exist error", err)
	}
}

func TestPrecedence(t *testing.T) {
	isolate(t)
	path := writeFile(t, t.TempDir(), "c.yaml", `
state_dir: /from/file
milter: {listen: "inet:127.0.0.1:1001"}
policy: {listen: "inet:127.0.0.1:1002"}
log: {level: debug}
quota: {default_daily_limit: 5, timezone: Europe/Berlin}
`)
	t.Setenv("RELAYCAP_MILTER_LISTEN", "inet:127.0.0.1:2001")
	t.Setenv("RELAYCAP_POLICY_LISTEN", "inet:127.0.0.1:2002")
	t.Setenv("RELAYCAP_QUOTA_DEFAULT_DAILY_LIMIT", "7")
	t.Setenv("RELAYCAP_QUOTA_TIMEZONE", "UTC")
	t.Setenv("RELAYCAP_STORE_SYNC_WRITES", "false")
	t.Setenv("RELAYCAP_MILTER_READ_TIMEOUT", "1m")
	t.Setenv("RELAYCAP_SOCKET_MODE", "0640")
	flags := emptyFlags()
	if err := flags.Parse([]string{"--milter-listen=inet:127.0.0.1:3001", "--state-dir=/from/flag"}); err != nil {
		t.Fatal(err)
	}

	c, err := Load(path, flags)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ what, got, want string }{
		{"flag over env over file", c.Milter.Listen, "inet:127.0.0.1:3001"},
		{"flag over file", c.StateDir, "/from/flag"},
		{"admin listen follows state_dir", c.Admin.Listen, "unix:/from/flag/admin.sock"},
		{"env over file", c.Policy.Listen, "inet:127.0.0.1:2002"},
		{"env over file (timezone)", c.Location.String(), "UTC"},
		{"file over unchanged flag default", c.Log.Level, "debug"},
		{"default", c.Log.Format, "text"},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.what, tc.got, tc.want)
		}
	}
	if c.Quota.DefaultDailyLimit != 7 || c.Store.SyncWrites || c.Milter.ReadTimeout != time.Minute || c.Socket.Mode != 0o640 {
		t.Errorf("env scalars: limit %d, sync %v, timeout %v, mode %#o; want 7, false, 1m0s, 0640",
			c.Quota.DefaultDailyLimit, c.Store.SyncWrites, c.Milter.ReadTimeout, uint32(c.Socket.Mode))
	}
}

func TestBadEnv(t *testing.T) {
	isolate(t)
	t.Setenv("RELAYCAP_QUOTA_HISTORY_DAYS", "lots")
	t.Setenv("RELAYCAP_LOG_LEVEL", "loud")
	_, err := Load("", nil)
	var p Problems
	if !errors.As(err, &p) || !strings.Contains(err.Error(), `quota.history_days: "lots" is not a whole number`) {
		t.Errorf("err = %v, want Problems naming quota.history_days", err)
	}
	t.Setenv("RELAYCAP_QUOTA_HISTORY_DAYS", "")
	if _, err := Load("", nil); err == nil || !strings.Contains(err.Error(), `log.level: "loud"`) {
		t.Errorf("err = %v, want log.level problem", err)
	}
}

func TestFullExample(t *testing.T) {
	isolate(t)
	path := filepath.Join("testdata", "good", "full.yaml")
	got, err := Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		StateDir: "/var/lib/relaycap",
		Milter: MilterConfig{Listen: "unix:/var/spool/postfix/relaycap/milter.sock", Unauthenticated: "reject",
			ReadTimeout: 2 * time.Minute, WriteTimeout: 10 * time.Second},
		Policy: PolicyConfig{Listen: "unix:/var/spool/postfix/relaycap/policy.sock", ReadTimeout: 90 * time.Second},
		Admin: AdminConfig{Listen: "unix:/run/relaycap/admin.sock", ListenTCP: "inet:127.0.0.1:10033",
			TokenFile: "/etc/relaycap/admin.token"},
		Metrics: MetricsConfig{Listen: "inet:127.0.0.1:10085"},
		Quota: QuotaConfig{
			Timezone: "Europe/Paris", DefaultDailyLimit: 50, OverQuota: "reject", HistoryDays: 30,
			Mode: ModeDryRun, DefaultHourlyLimit: 20, BurstAction: BurstSuspend,
			AccountsFile: filepath.Join("testdata", "good", "accounts.yaml"),
			Accounts: table(
				acct("alice@example.com", 500, quota.StatusActive),
				acct("bob.smith@example.org", 10, quota.StatusSuspended),
				acct("carol", 0, quota.StatusTerminated),
				hourly(dryRun(acct("dave", 20, quota.StatusActive)), 5),
				acct("erin@example.com", 1000, quota.StatusActive),
				acct("frank.jones@example.org", 25, quota.StatusSuspended),
			),
		},
		IDHeader: IDHeaderConfig{Name: "X-Relaycap-ID", KeysFile: "/etc/relaycap/keys",
			Extra: map[string]string{"X-Abuse-Contact": "abuse@example.net"}},
		Store: StoreConfig{Backend: BackendRedis, SyncWrites: false, MinFreeMB: 256, Redis: RedisConfig{
			Addrs: []string{"10.0.0.1:6379", "10.0.0.2:6380", "redis-3.example.net:6379"}, PasswordFile: "/etc/relaycap/redis.password",
			TLS: true, KeyPrefix: "rc:", HoldTTL: 5 * time.Minute, Timeout: 250 * time.Millisecond, WaitReplicas: 1}},
		Log:    LogConfig{Level: "debug", Format: "json"},
		Socket: SocketConfig{Mode: 0o600, Group: "postfix"},
		Notify: NotifyConfig{WebhookURL: "https://billing.example.net/hooks/relaycap",
			SecretFile: "/etc/relaycap/webhook.secret", Thresholds: []int{75, 90, 100}},
		Abuse:    AbuseConfig{AutoSuspendAfter: 3, Window: 48 * time.Hour},
		Location: mustLoc(t, "Europe/Paris"),
		Path:     path,
	}
	same(t, got, want)

	// The example must stay complete when a key is added to the table.
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := yaml.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	for _, s := range defaults {
		m, parts := raw, strings.Split(s.key, keyDelim)
		for _, part := range parts[:len(parts)-1] {
			m, _ = m[part].(map[string]any)
		}
		if _, ok := m[parts[len(parts)-1]]; !ok {
			t.Errorf("full.yaml lacks %s", strings.ReplaceAll(s.key, keyDelim, "."))
		}
	}
}

func TestAccountNames(t *testing.T) {
	isolate(t)
	dir := t.TempDir()
	writeFile(t, dir, "more.yaml", "\"Dan.Brown@Example.NET\": 3\n")
	path := writeFile(t, dir, "c.yaml", `
quota:
  accounts_file: more.yaml
  accounts:
    alice@example.com: 500
    "bob.smith@example.org": {daily_limit: 10, status: suspended}
    Carol@Example.COM: {Daily_Limit: 5}
`)
	c, err := Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []quota.Account{
		acct("alice@example.com", 500, quota.StatusActive),
		acct("bob.smith@example.org", 10, quota.StatusSuspended),
		acct("carol@example.com", 5, quota.StatusActive),
		acct("dan.brown@example.net", 3, quota.StatusActive),
	}
	if got := slices.Collect(c.Quota.Accounts.All()); !reflect.DeepEqual(got, want) {
		t.Errorf("accounts\n got %v\nwant %v", got, want)
	}
}

func TestAccountsFileFromEnvWithoutConfigFile(t *testing.T) {
	isolate(t)
	abs, err := filepath.Abs(filepath.Join("testdata", "good", "accounts.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("RELAYCAP_QUOTA_ACCOUNTS_FILE", abs)
	c, err := Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := c.Quota.Accounts.Get("erin@example.com"); got != acct("erin@example.com", 1000, quota.StatusActive) {
		t.Errorf("erin = %+v", got)
	}
}

// TestBadConfigs loads every testdata/bad/NAME.yaml; each line of NAME.err
// must appear in the error.
func TestBadConfigs(t *testing.T) {
	isolate(t)
	files, err := filepath.Glob(filepath.Join("testdata", "bad", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no bad configs: %v", err)
	}
	for _, path := range files {
		name := strings.TrimSuffix(filepath.Base(path), ".yaml")
		t.Run(name, func(t *testing.T) {
			want, err := os.ReadFile(strings.TrimSuffix(path, ".yaml") + ".err")
			if err != nil {
				t.Fatal(err)
			}
			c, err := Load(path, nil)
			if err == nil {
				t.Fatalf("loaded: %+v", c)
			}
			if c != nil {
				t.Errorf("returned a config with the error")
			}
			for _, line := range strings.Split(strings.TrimSpace(string(want)), "\n") {
				if !strings.Contains(err.Error(), line) {
					t.Errorf("error lacks %q:\n%v", line, err)
				}
			}
		})
	}
}

func TestAllProblemsAtOnce(t *testing.T) {
	isolate(t)
	_, err := Load(filepath.Join("testdata", "bad", "multi.yaml"), nil)
	var p Problems
	if !errors.As(err, &p) {
		t.Fatalf("err = %v, want Problems", err)
	}
	if len(p) != 3 {
		t.Errorf("%d problems, want 3:\n%v", len(p), p)
	}
	if p.Error() != strings.Join(p, "\n") {
		t.Errorf("Error() = %q", p.Error())
	}
}

func TestDefaultYAMLLoadsAsDefaults(t *testing.T) {
	isolate(t)
	text := DefaultYAML()
	var raw map[string]any
	if err := yaml.Unmarshal([]byte(text), &raw); err != nil {
		t.Fatalf("DefaultYAML is not YAML: %v\n%s", err, text)
	}
	path := writeFile(t, t.TempDir(), "defaults.yaml", text)
	got, err := Load(path, nil)
	if err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	want := Defaults()
	want.Path = path
	same(t, got, want)
}

func TestValidateHandBuilt(t *testing.T) {
	c := Defaults()
	c.Location = nil
	c.Admin.Listen = ""
	c.StateDir = ""
	c.Socket.Mode = 0o1777
	c.Milter.WriteTimeout = 0
	c.IDHeader.Extra = map[string]string{"X-Note": "one\ntwo"}
	err := c.Validate()
	var p Problems
	if !errors.As(err, &p) {
		t.Fatalf("err = %v, want Problems", err)
	}
	for _, want := range []string{
		`state_dir: must not be empty`,
		`admin.listen: "" is not unix:/path or inet:host:port`,
		`socket.mode: 01777 is not a permission mode`,
		`milter.write_timeout: 0s is not a positive duration`,
		`id_header.extra[X-Note]: the value must be a single line`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("problems lack %q:\n%v", want, err)
		}
	}
	if len(p) != 5 {
		t.Errorf("%d problems, want 5:\n%v", len(p), err)
	}
	if c.Location != nil {
		t.Error("an invalid config got a Location")
	}
}

func TestValidHeaderName(t *testing.T) {
	for in, want := range map[string]bool{
		"X-Relay-ID": true, "x_ok!~": true, "": false, "X Relay": false, "X:Relay": false,
		"X-Relé": false, "X-\x7f": false, "X-\t": false,
	} {
		if got := validHeaderName(in); got != want {
			t.Errorf("validHeaderName(%q) = %v, want %v", in, got, want)
		}
	}
}

func FuzzLoad(f *testing.F) {
	isolate(f)
	seeds, _ := filepath.Glob(filepath.Join("testdata", "*", "*.yaml"))
	for _, s := range seeds {
		if b, err := os.ReadFile(s); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(DefaultYAML()))
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "c.yaml")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		c, err := Load(path, nil)
		if err != nil {
			if c != nil || err.Error() == "" {
				t.Fatalf("error %q with config %v", err, c)
			}
			return
		}
		if c.Location == nil || c.Quota.Accounts == nil || c.IDHeader.Extra == nil {
			t.Fatalf("derived fields unset: %+v", c)
		}
		for _, l := range []string{c.Milter.Listen, c.Policy.Listen, c.Admin.Listen} {
			if _, _, err := sockets.ParseListen(l); err != nil {
				t.Fatal(err)
			}
		}
		for a := range c.Quota.Accounts.All() {
			if a.Name != strings.ToLower(a.Name) || a.DailyLimit < 0 || a.Status == "" {
				t.Fatalf("account %+v", a)
			}
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("loaded config fails Validate: %v", err)
		}
	})
}

// TestBracesMeanDefaults: an empty file is refused (a reload may catch a
// file half-written), but {} is an explicit "nothing to change".
func TestBracesMeanDefaults(t *testing.T) {
	isolate(t)
	path := filepath.Join("testdata", "good", "braces.yaml")
	got, err := Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := Defaults()
	want.Path = path
	same(t, got, want)
}

// TestValidateChangesNothing: Validate only reports; deriving fields such
// as Location is Load's job, so a check of a hand-built config has no side
// effect to depend on.
func TestValidateChangesNothing(t *testing.T) {
	c := Defaults()
	if c.Location == nil || c.Location.String() != c.Quota.Timezone {
		t.Fatalf("Defaults' Location = %v, want %s loaded", c.Location, c.Quota.Timezone)
	}
	c.Location = nil
	before := *c
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(*c, before) {
		t.Fatalf("Validate changed the config:\n got %+v\nwant %+v", *c, before)
	}
}

// TestRestartOnlySettingsAreKept: each setting the defaults table marks
// onRestart keeps its running value through a reload and is reported;
// each other one takes the file's value. The list below is the contract:
// dropping a row's onRestart (store.min_free_mb, quota.history_days, …)
// fails here.
func TestRestartOnlySettingsAreKept(t *testing.T) {
	want := []string{"state_dir", "milter.listen", "milter.read_timeout", "milter.write_timeout",
		"policy.listen", "policy.read_timeout", "admin.listen", "admin.listen_tcp", "admin.token_file", "metrics.listen", "quota.timezone", "quota.burst_action", "quota.history_days",
		"store.backend", "store.sync_writes", "store.min_free_mb", "store.redis.addrs", "store.redis.password_file", "store.redis.tls",
		"store.redis.key_prefix", "store.redis.hold_ttl", "store.redis.timeout", "store.redis.wait_replicas", "log.format", "socket.mode", "socket.group",
		"notify.webhook_url", "notify.secret_file", "notify.thresholds", "abuse.auto_suspend_after", "abuse.window"}
	if got := RestartOnly(); !reflect.DeepEqual(got, want) {
		t.Fatalf("restart-only settings:\n got %v\nwant %v", got, want)
	}
	restart := map[string]bool{}
	for _, k := range want {
		restart[k] = true
	}
	for _, s := range defaults {
		key := strings.ReplaceAll(s.key, keyDelim, ".")
		running, next := Defaults(), Defaults()
		f := field(next, s.key)
		changeValue(t, f)
		changed := fmt.Sprint(f.Interface())
		changes := KeepRestartOnly(next, running)
		kept := reflect.DeepEqual(field(next, s.key).Interface(), field(running, s.key).Interface())
		switch {
		case restart[key] && (!kept || len(changes) != 1 || changes[0].Key != key || changes[0].File != changed):
			t.Errorf("%s: kept %v, changes %+v; want the running value kept and the change to %q reported", key, kept, changes, changed)
		case !restart[key] && (kept || len(changes) != 0):
			t.Errorf("%s: kept %v, changes %+v; want the file's value applied", key, kept, changes)
		}
	}
}

// changeValue sets v to a different value of its type.
func changeValue(t *testing.T, v reflect.Value) {
	t.Helper()
	switch v.Kind() {
	case reflect.String:
		v.SetString(v.String() + "-changed")
	case reflect.Int, reflect.Int64:
		v.SetInt(v.Int() + 1)
	case reflect.Uint32:
		v.SetUint(v.Uint() ^ 1)
	case reflect.Bool:
		v.SetBool(!v.Bool())
	case reflect.Slice:
		v.Set(reflect.Append(v, reflect.Zero(v.Type().Elem())))
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		m.SetMapIndex(reflect.ValueOf("changed").Convert(v.Type().Key()), reflect.Zero(v.Type().Elem()))
		v.Set(m)
	default:
		t.Fatalf("no way to change a %s", v.Type())
	}
}

// TestKeepRestartOnlyKeepsTheZoneWhole: a kept quota.timezone keeps the
// running Location with it.
func TestKeepRestartOnlyKeepsTheZoneWhole(t *testing.T) {
	running, next := Defaults(), Defaults()
	next.Quota.Timezone, next.Location = "UTC", time.UTC
	KeepRestartOnly(next, running)
	if next.Quota.Timezone != running.Quota.Timezone || next.Location != running.Location {
		t.Fatalf("kept zone %s with Location %v, want %s with the running Location", next.Quota.Timezone, next.Location, running.Quota.Timezone)
	}
}
