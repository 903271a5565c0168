// Package reply turns quota decisions into SMTP replies: a code, an
// enhanced status code (RFC 3463) and a short text. The milter and the
// policy service both answer from here, so a client sees the same words
// whichever of them refused it.
package reply

import (
	"fmt"

	"github.com/relaycap/relaycap/quota"
)

// Reply is one SMTP reply.
type Reply struct {
	Code   uint16 // 4xx or 5xx
	Status string // enhanced status code, e.g. "4.7.1"
	Text   string
}

// String renders the reply as it goes on the wire, without CRLF.
func (r Reply) String() string { return fmt.Sprintf("%d %s %s", r.Code, r.Status, r.Text) }

// Temporary reports whether the client should retry (4xx).
func (r Reply) Temporary() bool { return r.Code < 500 }

// ForDecision answers a decision that refused a relay. overQuotaReject
// makes an exhausted quota a permanent failure instead of a deferral.
func ForDecision(d quota.Decision, overQuotaReject bool) Reply {
	name := d.Account.Name
	switch d.Verdict {
	case quota.OverQuota:
		// RFC 3463 4.7.1/5.7.1: delivery not authorized. The text says
		// when retrying can succeed.
		text := fmt.Sprintf("Daily relay quota of %s exhausted (%d/%d used); it resets at %s",
			name, d.Used+d.Reserved, d.Limit, d.Resets())
		if overQuotaReject {
			return Reply{550, "5.7.1", text}
		}
		return Reply{450, "4.7.1", text}
	case quota.OverHourly:
		// The burst brake is temporary by nature: always 4.7.1, whatever
		// over_quota says, with the hour it lifts.
		return Reply{450, "4.7.1", fmt.Sprintf("Account %s: hourly relay limit of %d reached; try again after %s",
			name, d.Hour.Limit, d.Hour.TryAfter())}
	case quota.Suspended:
		return Reply{550, "5.7.1", fmt.Sprintf("Account %s is suspended", name)}
	case quota.Terminated:
		return Reply{550, "5.7.1", fmt.Sprintf("Account %s is terminated", name)}
	case quota.NotProvisioned:
		return Reply{550, "5.7.1", fmt.Sprintf("Account %s has no relay quota", name)}
	}
	return TemporaryFailure()
}

// TemporaryFailure answers a store or internal failure: nothing was counted
// and the client should retry (RFC 3463 4.3.0: other mail system problem).
func TemporaryFailure() Reply {
	return Reply{451, "4.3.0", "Relay quota service temporarily unavailable, try again later"}
}

// AuthRequired refuses unauthenticated mail when relaycap is told to
// (RFC 4954 section 6: 530 5.7.0 Authentication required).
func AuthRequired() Reply {
	return Reply{530, "5.7.0", "Authentication required"}
}
