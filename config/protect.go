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

// BurstAction is quota.burst_action.
type BurstAction string

// The values of quota.burst_action.
const (
	BurstDefer   BurstAction = "defer"   // 450 4.7.1 until the next hour
	BurstSuspend BurstAction = "suspend" // defer, and suspend the account for an operator to resume
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
	ck.oneOf("quota.burst_action", string(q.BurstAction), string(BurstDefer), string(BurstSuspend))
	if q.DefaultHourlyLimit < 0 {
		ck.add("quota.default_hourly_limit: %d is negative", q.DefaultHourlyLimit)
	}
	if c.Abuse.AutoSuspendAfter < 0 {
		ck.add("abuse.auto_suspend_after: %d is negative", c.Abuse.AutoSuspendAfter)
	}
	ck.positive("abuse.window", c.Abuse.Window)
}
