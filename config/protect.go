package config

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

func (c *Config) checkProtection(ck *checker) {
	q := c.Quota
	ck.oneOf("quota.mode", string(q.Mode), string(ModeEnforce), string(ModeDryRun))
}
