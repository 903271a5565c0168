package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/pflag"
)

// systemPath is DefaultPath; tests point it elsewhere.
var systemPath = DefaultPath

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
	v := newViper()
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
	if err := overlay(v, flags, useEnv); err != nil {
		return nil, err
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
