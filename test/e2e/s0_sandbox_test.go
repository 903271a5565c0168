//go:build e2e

package e2e_test

import (
	"testing"

	"github.com/relaycap/relaycap/test/e2e"
)

// TestSandbox checks the sandbox without relaycap in the path: the
// bench-plain listener (no auth, no milter, no policy) relays a message from
// loopback to the sink, so a failure here is Postfix's or the sink's, not
// the daemon's.
func TestSandbox(t *testing.T) {
	sc := begin(t, false)
	to := rcpts("plain", 2)
	r := sc.send(t, e2e.Send{Listener: sb.Plain, NoTLS: true, From: "plain@example.com", To: to})
	if !r.Accepted() {
		sc.fatalf(t, "bench-plain listener did not queue the message: %s", r.Summary())
	}
	sc.settle(t)
	got := sb.Sink.ByMessageID(r.MessageID)
	if len(got) != 1 {
		sc.fatalf(t, "sink holds %d copies of %s, want 1", len(got), r.MessageID)
	}
	if len(got[0].Rcpts) != 2 || got[0].Rcpts[0] != to[0] || got[0].Rcpts[1] != to[1] {
		sc.errorf(t, "sink recipients %v, want %v", got[0].Rcpts, to)
	}
	if ids := sb.QueueIDs(r.MessageID); len(ids) != 1 || ids[0] != r.QueueID() {
		sc.errorf(t, "maillog queue ids %v for %s, swaks saw %q", ids, r.MessageID, r.QueueID())
	}
}
