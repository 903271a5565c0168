package config

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
	"go.yaml.in/yaml/v3"
)

// systemPath is DefaultPath; tests point it elsewhere.
var systemPath = DefaultPath

// EnvPrefix starts every environment variable Load reads: a key's sections
// are joined with "_" and upper-cased, e.g. RELAYCAP_QUOTA_DEFAULT_DAILY_LIMIT.
const EnvPrefix = "RELAYCAP"

// flagKeys maps the flags BindFlags registers to their keys.
var flagKeys = map[string]string{
	"state-dir":     "state_dir",
	"milter-listen": "milter::listen",
	"policy-listen": "policy::listen",
	"admin-listen":  "admin::listen",
	"log-level":     "log::level",
	"log-format":    "log::format",
}

// BindFlags registers the flags that override config keys. Their defaults are
// only shown in help: Load uses a flag only if it was set.
func BindFlags(flags *pflag.FlagSet) {
	flags.String("state-dir", defaultString("state_dir"), "directory for the database and the admin socket")
	flags.String("milter-listen", defaultString("milter::listen"), "milter listen address (unix:/path or inet:host:port)")
	flags.String("policy-listen", defaultString("policy::listen"), "policy service listen address (unix:/path or inet:host:port)")
	flags.String("admin-listen", "", "admin API listen address (default unix:<state-dir>/admin.sock)")
	flags.String("log-level", defaultString("log::level"), "log level: debug, info, warn or error")
	flags.String("log-format", defaultString("log::format"), "log format: text or json")
}

func defaultString(key string) string {
	for _, s := range defaults {
		if s.key == key {
			return fmt.Sprint(s.val)
		}
	}
	panic("config: no default for " + key)
}

// Load reads the config file at path, or DefaultPath if path is "" and that
// file exists (built-in defaults otherwise), applies RELAYCAP_* environment
// variables and the flags of BindFlags that were set, and validates the
// result. Any error means the config is unusable; an error that holds
// Problems (see errors.As) lists everything wrong with it.
func Load(path string, flags *pflag.FlagSet) (*Config, error) {
	if path == "" {
		if _, err := os.Stat(systemPath); err == nil {
			path = systemPath
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("config: %w", err)
		}
	}
	return load(path, flags, true)
}

// Reload reads the configuration again for a daemon running on running: the
// file it started from, which must still be there (a vanished default file
// must not turn into the built-in defaults, which have no accounts). A
// daemon that started on the built-in defaults looks for DefaultPath again.
func Reload(running *Config, flags *pflag.FlagSet) (*Config, error) {
	return Load(running.Path, flags)
}

// Defaults returns the built-in configuration, ignoring any file, the
// environment and flags.
func Defaults() *Config {
	c, err := load("", nil, false)
	if err != nil {
		panic("config: built-in defaults are invalid: " + err.Error())
	}
	return c
}

func load(path string, flags *pflag.FlagSet, useEnv bool) (*Config, error) {
	v := viper.NewWithOptions(viper.KeyDelimiter(keyDelim))
	for _, s := range defaults {
		if _, isMap := s.val.(map[string]any); !isMap { // viper sees no map defaults anyway
			v.SetDefault(s.key, s.val)
		}
	}
	var probs Problems
	var extraNames map[string]string
	var accounts accountSet
	if path != "" {
		raw, doc, err := readConfig(path, &accounts)
		if err != nil {
			return nil, err
		}
		probs = append(probs, decimalMode(doc)...)
		probs = append(probs, caseClashes(raw, "")...)
		extraNames = extraHeaderNames(raw)
		if err := v.MergeConfigMap(raw); err != nil { // lowercases raw's keys in place
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	if useEnv {
		v.SetEnvPrefix(EnvPrefix)
		v.SetEnvKeyReplacer(strings.NewReplacer(keyDelim, "_"))
		v.AutomaticEnv() // viper only looks up keys it knows: every scalar has a default
	}
	if flags != nil {
		for name, key := range flagKeys {
			if f := flags.Lookup(name); f != nil && f.Changed {
				if err := v.BindPFlag(key, f); err != nil {
					return nil, err
				}
			}
		}
	}

	c := &Config{Path: path}
	if err := decode(v.AllSettings(), c); err != nil {
		probs = append(probs, decodeProblems(err, "")...)
	}
	if len(probs) > 0 { // a partly decoded config would only add noise
		return nil, wrap(path, append(probs, accounts.probs...))
	}
	if err := c.readAccountsFile(&accounts); err != nil {
		probs = append(probs, "quota.accounts_file: "+err.Error())
	}
	tab, accountProbs := accounts.build()
	c.Quota.Accounts = tab
	probs = append(probs, accountProbs...)
	c.fillDerived(extraNames)
	if err := c.Validate(); err != nil {
		var vp Problems
		if !errors.As(err, &vp) {
			return nil, err
		}
		probs = append(probs, vp...)
	}
	if len(probs) > 0 {
		return nil, wrap(path, probs)
	}
	// Validate loaded the zone once already; it cannot fail now.
	loc, err := time.LoadLocation(c.Quota.Timezone)
	if err != nil {
		return nil, wrap(path, Problems{"quota.timezone: " + err.Error()})
	}
	c.Location = loc
	return c, nil
}

func wrap(path string, p Problems) error {
	if path == "" {
		return p
	}
	return fmt.Errorf("%s: %w", path, p)
}

// fillDerived sets what Load derives rather than reads.
func (c *Config) fillDerived(extraNames map[string]string) {
	if c.Admin.Listen == "" {
		c.Admin.Listen = "unix:" + filepath.Join(c.StateDir, "admin.sock")
	}
	// Header names go into mail as written; viper lowercased them.
	extra := make(map[string]string, len(c.IDHeader.Extra))
	for name, val := range c.IDHeader.Extra {
		if orig, ok := extraNames[name]; ok {
			name = orig
		}
		extra[name] = val
	}
	c.IDHeader.Extra = extra
}

// readAccountsFile reads Quota.AccountsFile, if set, into set. A relative
// path is relative to the config file's directory.
func (c *Config) readAccountsFile(set *accountSet) error {
	file := c.Quota.AccountsFile
	if file == "" {
		return nil
	}
	if !filepath.IsAbs(file) && c.Path != "" {
		file = filepath.Join(filepath.Dir(c.Path), file)
		c.Quota.AccountsFile = file
	}
	return set.readAccountsFile(file)
}

// decimalMode reports socket.mode written as a plain number: YAML reads
// 440 as decimal (0670 as a mode), which is never what was meant; a
// leading 0 (0440) or quotes ("0440") make it octal.
func decimalMode(doc *yaml.Node) Problems {
	if len(doc.Content) == 0 {
		return nil
	}
	mode := lookupNode(lookupNode(doc.Content[0], "socket"), "mode")
	if mode == nil || mode.Tag != "!!int" || strings.HasPrefix(mode.Value, "0") {
		return nil
	}
	return Problems{fmt.Sprintf("socket.mode: %s is a decimal number; write the octal mode with a leading 0 or quoted, like \"0%s\"", mode.Value, mode.Value)}
}

// lookupNode returns the value of key in a YAML mapping node, or nil.
func lookupNode(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if strings.EqualFold(m.Content[i].Value, key) {
			return m.Content[i+1]
		}
	}
	return nil
}

// caseClashes reports keys of one mapping that differ only in case: viper
// would silently keep one of them.
func caseClashes(m map[string]any, at string) Problems {
	var p Problems
	seen := make(map[string]string, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		lk := strings.ToLower(k)
		if prev, dup := seen[lk]; dup {
			p = append(p, fmt.Sprintf("%s: keys %q and %q differ only in case", strings.TrimPrefix(at, "."), prev, k))
		}
		seen[lk] = k
		if sub, ok := m[k].(map[string]any); ok {
			p = append(p, caseClashes(sub, at+"."+lk)...)
		}
	}
	return p
}

// extraHeaderNames maps the lowercased id_header.extra names to their case
// in the file.
func extraHeaderNames(raw map[string]any) map[string]string {
	ih, _ := raw["id_header"].(map[string]any)
	extra, _ := ih["extra"].(map[string]any)
	names := make(map[string]string, len(extra))
	for k := range extra {
		names[strings.ToLower(k)] = k
	}
	return names
}

// decode is strict: unknown keys and values of the wrong type are errors.
func decode(input, out any) error {
	d, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		ErrorUnused: true,
		Result:      out,
		DecodeHook: mapstructure.ComposeDecodeHookFunc(
			durationHook, modeHook, intListHook, stringListHook, stringScalarHook,
		),
	})
	if err != nil {
		return err
	}
	return d.Decode(input)
}

// decodeProblems flattens mapstructure's joined errors into one line each.
func decodeProblems(err error, prefix string) Problems {
	var p Problems
	var walk func(error)
	walk = func(err error) {
		var de *mapstructure.DecodeError
		switch e := err.(type) {
		case interface{ Unwrap() []error }:
			for _, e := range e.Unwrap() {
				walk(e)
			}
		case *mapstructure.DecodeError:
			de = e
		default:
			if inner := errors.Unwrap(err); inner != nil {
				walk(inner)
			} else {
				p = append(p, prefix+err.Error())
			}
		}
		if de == nil {
			return
		}
		msg := de.Unwrap().Error()
		if keys, ok := strings.CutPrefix(msg, "has invalid keys: "); ok {
			for _, k := range strings.Split(keys, ", ") {
				p = append(p, prefix+"unknown key "+strings.TrimPrefix(de.Name()+"."+k, "."))
			}
			return
		}
		p = append(p, prefix+de.Name()+": "+msg)
	}
	walk(err)
	slices.Sort(p) // mapstructure walks maps in random order
	return p
}

var (
	durationType = reflect.TypeFor[time.Duration]()
	modeType     = reflect.TypeFor[fs.FileMode]()
)

// durationHook wants a unit: a bare 300 would otherwise be 300ns.
func durationHook(_, to reflect.Type, data any) (any, error) {
	if to != durationType {
		return data, nil
	}
	switch v := data.(type) {
	case time.Duration:
		return v, nil
	case string:
		return time.ParseDuration(v)
	}
	return nil, fmt.Errorf("%v is not a duration with a unit, like \"30s\" or \"5m\"", data)
}

// modeHook reads "0660" as octal. An unquoted 0660 is already octal to the
// YAML parser and arrives as 432; Validate catches a decimal 660.
func modeHook(_, to reflect.Type, data any) (any, error) {
	if to != modeType {
		return data, nil
	}
	if s, ok := data.(string); ok {
		n, err := strconv.ParseUint(s, 8, 32)
		if err != nil {
			return nil, fmt.Errorf("%q is not an octal mode like \"0660\"", s)
		}
		return fs.FileMode(n), nil
	}
	if v := reflect.ValueOf(data); v.CanInt() && v.Int() >= 0 && v.Int() <= 0o7777 {
		return fs.FileMode(v.Int()), nil
	}
	return nil, fmt.Errorf("%v is not an octal mode like \"0660\"", data)
}

// stringScalarHook parses numbers and booleans that arrive as strings (every
// environment variable does). Base 10 only: "0100" is a hundred.
func stringScalarHook(_, to reflect.Type, data any) (any, error) {
	s, ok := data.(string)
	if !ok {
		return data, nil
	}
	switch to.Kind() {
	case reflect.Int, reflect.Int64:
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%q is not a whole number", s)
		}
		return n, nil
	case reflect.Bool:
		b, err := strconv.ParseBool(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("%q is not true or false", s)
		}
		return b, nil
	}
	return data, nil
}
