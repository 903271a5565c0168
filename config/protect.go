package config

import "time"

// Mode is quota.mode.
type Mode string

// The values of quota.mode.
const (
	ModeEnforce Mode = "enforce"
	// ModeDryRun computes, counts and logs every limit decision but lets
	// the recipient through; suspended and terminated accounts are still
	// refused.
	ModeDryRun Mode = "dry_run"
)

// AbuseConfig is the complaint-driven suspension.
type AbuseConfig struct {
	// AutoSuspendAfter complaints within Window suspend the account; 0
	// never does.
	AutoSuspendAfter int           `mapstructure:"auto_suspend_after"`
	Window           time.Duration `mapstructure:"window"`
}

func (c *Config) checkProtection(ck *checker) {
	q := c.Quota
	ck.oneOf("quota.mode", string(q.Mode), string(ModeEnforce), string(ModeDryRun))
	if c.Abuse.AutoSuspendAfter < 0 {
		ck.add("abuse.auto_suspend_after: %d is negative", c.Abuse.AutoSuspendAfter)
	}
	ck.positive("abuse.window", c.Abuse.Window)
}
