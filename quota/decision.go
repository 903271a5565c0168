package quota

import (
	"fmt"
	"time"
)

// Verdict is the engine's answer for one more relay.
type Verdict int

// The verdicts. Only Allowed lets a recipient through. The zero Verdict is
// none of them: a Decision left unset by a swallowed error never allows.
const (
	NoVerdict      Verdict = iota // no decision was made
	Allowed                       // one more relay may go out
	OverQuota                     // today's limit is used up; resets at local midnight
	Suspended                     // the account is suspended
	Terminated                    // the account is terminated
	NotProvisioned                // the login has no relays at all (limit 0)
	OverHourly                    // this clock hour's limit is used up: the burst brake
)

var verdictNames = [...]string{"none", "allowed", "over_quota", "suspended", "terminated", "not_provisioned", "over_hourly_limit"}

func (v Verdict) String() string {
	if v >= 0 && int(v) < len(verdictNames) {
		return verdictNames[v]
	}
	return fmt.Sprintf("verdict(%d)", int(v))
}

// Decision is a verdict with what a reply or a log line needs to say.
type Decision struct {
	Verdict  Verdict
	Account  Account
	Day      Day
	Used     int64 // committed relays on Day
	Reserved int64 // relays held by open transactions on Day
	Limit    int64
	ResetAt  time.Time // the next local midnight, in the configured zone
	// DryRun: the account's limits are in dry run (quota.mode or its own
	// dry_run). WouldRefuse is then the verdict enforcing them would have
	// given a relay that was allowed; NoVerdict when none.
	DryRun      bool
	WouldRefuse Verdict
	// Hour is the clock hour's count, for an account with an hourly limit
	// (Hour.Limit 0: none); OverHourly refers to it.
	Hour HourCount
}

// HourCount is one clock hour of an account with an hourly limit.
type HourCount struct {
	Window   Day // HourOf
	Used     int64
	Reserved int64
	Limit    int64
	ResetAt  time.Time // the next hour, in the configured zone
}

// TryAfter says when the hour ends, as it goes into an SMTP reply: "16:00 EST".
func (h HourCount) TryAfter() string { return h.ResetAt.Format("15:04 MST") }

// OverLimit is how far Used is past Limit: in dry run, the relays of the
// day that enforcing would have refused.
func (d Decision) OverLimit() int64 { return max(0, d.Used-d.Limit) }

// Allowed reports whether the relay may go out.
func (d Decision) Allowed() bool { return d.Verdict == Allowed }

// Resets says when the quota resets, with the zone's abbreviation, as it
// goes into an SMTP reply: "2026-11-28 00:00 EST".
func (d Decision) Resets() string { return d.ResetAt.Format("2006-01-02 15:04 MST") }
