package quota

import "time"

// Events hears of the decisions a customer is told about: relays counted
// (thresholds) and recipients refused. The adapters call it on the mail
// path, after the decision and before they answer, so an implementation
// must be quick and can never change or fail the answer.
type Events interface {
	// Committed reports n relays just committed; d is the decision Commit
	// returned.
	Committed(d Decision, n int64, now time.Time)
	// Refused reports a recipient refused with decision d.
	Refused(d Decision, now time.Time)
}
