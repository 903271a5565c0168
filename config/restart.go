package config

import (
	"fmt"
	"reflect"
	"strings"
)

// Change is a restart-only setting whose value in a reloaded file differs
// from the running one.
type Change struct {
	Key           string // as written in YAML: "quota.timezone"
	Running, File string
}

// RestartOnly lists the keys of the settings a reload cannot change, as
// written in YAML ("store.min_free_mb"): the rows of the defaults table
// marked onRestart.
func RestartOnly() []string {
	var keys []string
	for _, s := range defaults {
		if s.apply == onRestart {
			keys = append(keys, strings.ReplaceAll(s.key, keyDelim, "."))
		}
	}
	return keys
}

// KeepRestartOnly puts the running value of every restart-only setting into
// next and returns the ones the file changed, so the caller can say so.
// What is derived from a kept setting (Location from quota.timezone) is
// kept with it.
func KeepRestartOnly(next, running *Config) []Change {
	var changes []Change
	for _, s := range defaults {
		if s.apply != onRestart {
			continue
		}
		nf, rf := field(next, s.key), field(running, s.key)
		if reflect.DeepEqual(nf.Interface(), rf.Interface()) {
			continue
		}
		changes = append(changes, Change{
			Key:     strings.ReplaceAll(s.key, keyDelim, "."),
			Running: fmt.Sprint(rf.Interface()), File: fmt.Sprint(nf.Interface()),
		})
		nf.Set(rf)
	}
	// A zone is kept whole: the running Location belongs to the running
	// timezone, whatever the file's loaded.
	if next.Quota.Timezone == running.Quota.Timezone {
		next.Location = running.Location
	}
	return changes
}

// field is the Config field a defaults-table key names, found through the
// mapstructure tags that also decode it.
func field(c *Config, key string) reflect.Value {
	v := reflect.ValueOf(c).Elem()
	for _, name := range strings.Split(key, keyDelim) {
		t := v.Type()
		i := 0
		for ; i < t.NumField(); i++ {
			if tag, _, _ := strings.Cut(t.Field(i).Tag.Get("mapstructure"), ","); tag == name {
				break
			}
		}
		if i == t.NumField() {
			panic("config: the defaults table names " + key + ", which Config lacks")
		}
		v = v.Field(i)
	}
	return v
}
