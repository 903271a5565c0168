// Package admin is relaycap's admin API: HTTP/JSON under /v1 on a unix
// socket (the caller's uid is logged and audited) and optionally on TCP
// with a bearer token. The server runs in the daemon; the client is what
// the CLI (and any Go program) calls it with. openapi.yaml describes the
// same routes and fields, and a test holds the two to each other.
package admin

import "time"

// AccountRequest creates or updates a store-managed account (PUT). Omitted
// fields stay as they are; a new account needs daily_limit.
type AccountRequest struct {
	DailyLimit  *int64  `json:"daily_limit,omitempty"`
	HourlyLimit *int64  `json:"hourly_limit,omitempty"` // 0 takes quota.default_hourly_limit
	DryRun      *bool   `json:"dry_run,omitempty"`
	Note        *string `json:"note,omitempty"`
	Status      string  `json:"status,omitempty"`
	Reason      string  `json:"reason,omitempty"`
}

// ReasonRequest suspends, resumes or terminates an account.
type ReasonRequest struct {
	Reason string `json:"reason"`
}

// ComplaintRequest is one abuse complaint against an account.
type ComplaintRequest struct {
	Reason  string `json:"reason"`
	QueueID string `json:"queue_id,omitempty"`
}

// Complaint is a recorded complaint and what it did.
type Complaint struct {
	Account          string `json:"account"`
	Complaints       int    `json:"complaints"`
	Window           string `json:"window"`
	AutoSuspendAfter int    `json:"auto_suspend_after"`
	Suspended        bool   `json:"suspended"`
	Status           string `json:"status"`
}

// PurchaseRequest is relays a billing system sold. PurchaseID is its
// idempotency key: a retry with the same id adds nothing.
type PurchaseRequest struct {
	Relays     int64  `json:"relays"`
	PurchaseID string `json:"purchase_id"`
	TodayOnly  bool   `json:"today_only,omitempty"`
}

// Account is an account as the API shows it.
type Account struct {
	Name        string    `json:"name"`
	DailyLimit  int64     `json:"daily_limit"`
	HourlyLimit int64     `json:"hourly_limit"` // 0: quota.default_hourly_limit applies
	DryRun      bool      `json:"dry_run"`
	TopUpToday  int64     `json:"top_up_today"`
	Status      string    `json:"status"`
	Note        string    `json:"note"`
	Source      string    `json:"source"` // store | file
	Created     time.Time `json:"created,omitzero"`
	Updated     time.Time `json:"updated,omitzero"`
}

// AccountDetail is `account show`: the account, its day, its purchases and
// its last audit entries.
type AccountDetail struct {
	Account   Account      `json:"account"`
	Usage     Usage        `json:"usage"`
	Purchases []Purchase   `json:"purchases"`
	Audit     []AuditEntry `json:"audit"`
}

// AccountList is one page of accounts; Next, if set, is the after= of the
// next page.
type AccountList struct {
	Accounts []Account `json:"accounts"`
	Next     string    `json:"next,omitempty"`
}

// Purchase is a recorded purchase; Replay is set when this call repeated
// an earlier one and changed nothing.
type Purchase struct {
	PurchaseID string    `json:"purchase_id"`
	Account    string    `json:"account"`
	Relays     int64     `json:"relays"`
	TodayOnly  bool      `json:"today_only"`
	Day        string    `json:"day"`
	Time       time.Time `json:"time"`
	Actor      string    `json:"actor"`
	DailyLimit int64     `json:"daily_limit"`
	DayLimit   int64     `json:"day_limit"`
	Replay     bool      `json:"replay"`
}

// Usage is an account's day so far, in the shape a customer portal shows
// it (SES GetSendQuota: max, sent, remaining; plus the reset).
type Usage struct {
	Account   string `json:"account"`
	Day       string `json:"day"`
	Used      int64  `json:"used"`
	Reserved  int64  `json:"reserved"`
	Limit     int64  `json:"limit"`
	Remaining int64  `json:"remaining"`
	Status    string `json:"status"`
	Source    string `json:"source"` // store | file | default
	ResetsAt  string `json:"resets_at"`
	// DryRun: the account's limits are in dry run; WouldRefuse is then
	// the relays of the day past the limit, which enforcing would have
	// refused.
	DryRun      bool  `json:"dry_run"`
	WouldRefuse int64 `json:"would_refuse"`
	// HourlyLimit is the account's hourly limit (0: none) and HourUsed the
	// relays of the current clock hour, committed or in flight.
	HourlyLimit int64 `json:"hourly_limit"`
	HourUsed    int64 `json:"hour_used"`
}

// History is an account's committed relays per day.
type History struct {
	Account string     `json:"account"`
	From    string     `json:"from"`
	To      string     `json:"to"`
	Days    []DayUsage `json:"days"`
}

// DayUsage is one day of a History.
type DayUsage struct {
	Day  string `json:"day"`
	Used int64  `json:"used"`
}

// Top is the accounts with the most relays today.
type Top struct {
	Day      string         `json:"day"`
	Accounts []AccountUsage `json:"accounts"`
}

// AccountUsage is one row of Top.
type AccountUsage struct {
	Account string `json:"account"`
	Used    int64  `json:"used"`
}

// Audit is an account's audit trail, newest first.
type Audit struct {
	Account string       `json:"account"`
	Entries []AuditEntry `json:"entries"`
}

// AuditEntry is one recorded change.
type AuditEntry struct {
	Time       time.Time `json:"time"`
	Account    string    `json:"account"`
	Actor      string    `json:"actor"`
	Action     string    `json:"action"`
	Before     *State    `json:"before,omitempty"`
	After      *State    `json:"after,omitempty"`
	Reason     string    `json:"reason,omitempty"`
	PurchaseID string    `json:"purchase_id,omitempty"`
	QueueIDs   []string  `json:"queue_ids,omitempty"`
}

// State is an account's settings before or after a change.
type State struct {
	DailyLimit  int64  `json:"daily_limit"`
	HourlyLimit int64  `json:"hourly_limit,omitempty"`
	DryRun      bool   `json:"dry_run,omitempty"`
	Status      string `json:"status"`
	Note        string `json:"note,omitempty"`
	TopUp       int64  `json:"top_up,omitempty"`
}

// Deleted answers a delete.
type Deleted struct {
	Account string `json:"account"`
	Deleted bool   `json:"deleted"`
}

// Error is every error's body.
type Error struct {
	Message string `json:"error"`
	Code    string `json:"code"`
}

// The codes of Error.
const (
	CodeBadRequest       = "bad_request"
	CodeUnauthorized     = "unauthorized"
	CodeNotFound         = "not_found"
	CodeMethod           = "method_not_allowed"
	CodeFileManaged      = "file_managed"
	CodeTerminated       = "terminated"
	CodePurchaseConflict = "purchase_conflict"
	CodeUnavailable      = "unavailable"
	CodeInternal         = "internal"
)

// Status is the daemon at a glance (GET /v1/status), what `relaycap
// status` prints.
type Status struct {
	Version       string    `json:"version"`
	StartedAt     time.Time `json:"started_at"`
	UptimeSeconds int64     `json:"uptime_seconds"`
	// Health is "ok", or why the daemon cannot relay now (as /healthz).
	Health       string           `json:"health"`
	Backend      string           `json:"backend"`
	StateDir     string           `json:"state_dir"`
	FreeBytes    int64            `json:"state_dir_free_bytes"`
	MinFreeBytes int64            `json:"min_free_bytes"`
	KeyIDs       []string         `json:"key_ids"`
	Listeners    []StatusListener `json:"listeners"`
	// Accounts counts the file's and the store's accounts by status.
	Accounts []StatusCount `json:"accounts"`
	Day      string        `json:"day"`
	// RelaysUsed is every login's relays of Day; RelaysSold the active
	// accounts' limits of Day (logins on the default limit have none).
	RelaysUsed int64          `json:"relays_used"`
	RelaysSold int64          `json:"relays_sold"`
	Top        []AccountUsage `json:"top"`
	LastReload StatusReload   `json:"last_reload"`
}

// StatusListener is one listener of Status.
type StatusListener struct {
	Service string `json:"service"`
	Address string `json:"address"`
}

// StatusCount is the number of accounts of one status.
type StatusCount struct {
	Status string `json:"status"`
	Count  int64  `json:"count"`
}

// StatusReload is the last config load: the start, or the last SIGHUP.
type StatusReload struct {
	Time  time.Time `json:"time"`
	OK    bool      `json:"ok"`
	Error string    `json:"error,omitempty"`
}
