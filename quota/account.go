package quota

import (
	"fmt"
	"slices"
	"strings"
)

// Status is an account's standing.
type Status string

// The statuses an account can have. Only an active account relays.
const (
	StatusActive     Status = "active"
	StatusSuspended  Status = "suspended"
	StatusTerminated Status = "terminated"
)

// Statuses lists every status, for messages and checks.
func Statuses() []Status { return []Status{StatusActive, StatusSuspended, StatusTerminated} }

// ParseStatus checks s names a known status. It is the one place where an
// account whose status is not given becomes active: "" means active.
func ParseStatus(s string) (Status, error) {
	if s == "" {
		return StatusActive, nil
	}
	if slices.Contains(Statuses(), Status(s)) {
		return Status(s), nil
	}
	return "", fmt.Errorf("unknown account status %q (want active, suspended or terminated)", s)
}

// Source says where an account's definition came from.
type Source string

// Account sources, in order of precedence.
const (
	FromFile    Source = "file"    // the config file or its accounts_file; wins
	FromStore   Source = "store"   // the store, managed through the admin API
	FromDefault Source = "default" // quota.default_daily_limit for any other login
)

// Account is a customer: the SASL login, the relays it may send per day and
// its status.
type Account struct {
	Name       string
	DailyLimit int64
	TopUp      int64 // today-only relays bought for the day it was looked up on
	Status     Status
	Source     Source
	// DryRun puts this account's limits in dry run (its dry_run, in the
	// file or its store record).
	DryRun bool
	// HourlyLimit caps one clock hour; 0 takes the default hourly limit.
	HourlyLimit int64
}

// Limit is the relays the account may send on the day it was looked up on.
func (a Account) Limit() int64 { return a.DailyLimit + a.TopUp }

// NormalizeName maps a login to the key accounts are stored under. Logins are
// case-insensitive: the config loader lowercases keys, and two logins that
// differ only in case must not get two quotas.
func NormalizeName(login string) string {
	return strings.ToLower(strings.TrimSpace(login))
}
