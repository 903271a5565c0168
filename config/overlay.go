package config

import (
	"fmt"
	"strings"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

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

// newViper is a viper holding the defaults table.
func newViper() *viper.Viper {
	v := viper.NewWithOptions(viper.KeyDelimiter(keyDelim))
	for _, s := range defaults {
		if _, isMap := s.val.(map[string]any); !isMap { // viper sees no map defaults anyway
			v.SetDefault(s.key, s.val)
		}
	}
	return v
}

// overlay lays the RELAYCAP_* environment (if useEnv) and the flags of
// BindFlags that were set over what v holds.
func overlay(v *viper.Viper, flags *pflag.FlagSet, useEnv bool) error {
	if useEnv {
		v.SetEnvPrefix(EnvPrefix)
		v.SetEnvKeyReplacer(strings.NewReplacer(keyDelim, "_"))
		v.AutomaticEnv() // viper only looks up keys it knows: every scalar has a default
	}
	if flags == nil {
		return nil
	}
	for name, key := range flagKeys {
		if f := flags.Lookup(name); f != nil && f.Changed {
			if err := v.BindPFlag(key, f); err != nil {
				return err
			}
		}
	}
	return nil
}
