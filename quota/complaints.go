package quota

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// ComplaintEntry is the audit entry that records one abuse complaint
// against name; the account itself is unchanged.
func ComplaintEntry(r AccountRecord, actor, reason, queueID string, now time.Time, day Day) AuditEntry {
	st := StateOf(r, day)
	e := AuditEntry{Time: now, Account: r.Name, Actor: actor, Action: ActionComplaint,
		Before: &st, After: &st, Reason: reason}
	if queueID != "" {
		e.QueueIDs = []string{queueID}
	}
	return e
}

// Complaints counts the complaints among entries (an account's audit
// trail, newest first) since since and since the account was last
// resumed (an operator who resumes it starts the count afresh), and
// returns their queue ids, oldest first.
func Complaints(entries []AuditEntry, since time.Time) (int, []string) {
	n := 0
	var ids []string
	for _, e := range entries {
		if e.Action == ActionResume || e.Time.Before(since) {
			break
		}
		if e.Action == ActionComplaint {
			n++
			ids = append(ids, e.QueueIDs...)
		}
	}
	slices.Reverse(ids) // the trail is newest first
	return n, ids
}

// ComplaintSuspension is the change that suspends an account after n
// complaints within window, naming their queue ids.
func ComplaintSuspension(n int, window time.Duration, queueIDs []string, actor string, now time.Time, day Day) Change {
	return Change{Status: StatusSuspended, Reason: fmt.Sprintf("%d complaints within %s", n, shortDuration(window)),
		QueueIDs: queueIDs, Actor: actor, Time: now, Day: day}
}

// shortDuration writes 24h0m0s as 24h and 1h30m0s as 1h30m.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
