// Package notify carries customer events (threshold crossings, the first
// quota refusal of a day, sanctions, burst brakes) from the mail path to a
// webhook. Events are written to a persisted Outbox first and delivered
// from there by one background Deliverer, at least once, so a restart or a
// receiver that is down loses none, and the mail path never waits for the
// receiver. Each request is a JSON POST signed with HMAC-SHA256 (see Sign).
package notify

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync/atomic"
	"time"
)

// Type names what happened. Receivers switch on it.
type Type string

// The event types.
const (
	// TypeThreshold: the account's usage of the day reached Percent of
	// its daily limit. Once per account, day and threshold.
	TypeThreshold Type = "quota.threshold"
	// TypeQuotaRefused: the first recipient of the day refused because
	// the daily limit is used up. Once per account and day.
	TypeQuotaRefused Type = "quota.refused"
	// TypeBurst: the hourly limit refused a recipient (the burst brake
	// engaged): Used and Limit are the hour's, ResetsAt its end. Once per
	// account and hour.
	TypeBurst Type = "quota.burst"
	// TypeStatus: the account was suspended, resumed or terminated.
	TypeStatus Type = "account.status"
	// TypeTest is what `relaycap notify test` sends.
	TypeTest Type = "test"
)

// Event is one notification, as it is stored and as it is posted. Fields a
// type does not use are left out of the JSON.
type Event struct {
	// ID is unique per event and kept across redeliveries: a receiver
	// drops an ID it has already processed.
	ID      string    `json:"id"`
	Type    Type      `json:"type"`
	Time    time.Time `json:"time"` // when it happened, UTC
	Account string    `json:"account,omitempty"`

	Day      string     `json:"day,omitempty"`  // the local date counted on, "2006-01-02"
	Hour     string     `json:"hour,omitempty"` // the clock hour's start, RFC 3339 with the zone's offset
	Used     int64      `json:"used,omitempty"`
	Limit    int64      `json:"limit,omitempty"`
	Percent  int        `json:"percent,omitempty"`
	ResetsAt *time.Time `json:"resets_at,omitempty"`

	Status   string   `json:"status,omitempty"` // the new status of TypeStatus
	Reason   string   `json:"reason,omitempty"`
	Actor    string   `json:"actor,omitempty"`
	QueueIDs []string `json:"queue_ids,omitempty"`
}

// lastStamp makes the ids of one process strictly increasing, also for
// events of the same instant (a fixed test clock, a coarse one).
var lastStamp atomic.Int64

// NewID returns a fresh event id: the time in hex (ids sort by age, which
// the outbox relies on for order) and 64 random bits.
func NewID(now time.Time) string {
	var r [8]byte
	if _, err := rand.Read(r[:]); err != nil {
		panic(fmt.Sprintf("notify: crypto/rand failed: %v", err)) // the runtime never lets this happen
	}
	stamp := now.UnixNano()
	for {
		last := lastStamp.Load()
		if stamp <= last {
			stamp = last + 1
		}
		if lastStamp.CompareAndSwap(last, stamp) {
			break
		}
	}
	return fmt.Sprintf("%016x%s", uint64(stamp), hex.EncodeToString(r[:]))
}

// Crossed returns the thresholds (percent of limit, ascending) that usage
// passed on its way from before to after: before*100 < t*limit <= after*100.
// A limit of 0 or less has no thresholds.
func Crossed(before, after, limit int64, thresholds []int) []int {
	if limit <= 0 || after <= before {
		return nil
	}
	var out []int
	for _, t := range thresholds {
		mark := int64(t) * limit
		if before*100 < mark && mark <= after*100 {
			out = append(out, t)
		}
	}
	return out
}
