//go:build e2e

package e2e_test

import (
	"sync"
	"testing"

	"github.com/relaycap/relaycap/test/e2e"
)

// TestConcurrentSessions (scenario 3): 20 parallel sessions of one account
// with limit 50, 5 recipients each, spread over the five listeners: exactly
// 50 recipients are delivered, never 51.
func TestConcurrentSessions(t *testing.T) {
	sc := begin(t, true)
	const (
		account  = "burst@example.com"
		sessions = 20
		perMsg   = 5
		limit    = 50
	)
	results := make([]*e2e.SwaksResult, sessions)
	var wg sync.WaitGroup
	for i := 0; i < sessions; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := e2e.Swaks(sc.ctx, as(account, sb.Listeners[i%len(sb.Listeners)], rcpts("burst", perMsg)))
			sc.record(r)
			if err != nil {
				sc.errorf(t, "%v", err)
				return
			}
			results[i] = r
		}()
	}
	wg.Wait()

	accepted := map[string]bool{} // recipients Postfix said 250 to, in queued messages
	nOK, nDeferred, nOther, nQueued := 0, 0, 0, 0
	for i, r := range results {
		if r == nil {
			continue
		}
		for rc, e := range r.Rcpts() {
			switch {
			case e.Code == 250:
				nOK++
				if r.Accepted() {
					accepted[rc] = true
				}
			case e.Code == 450 && e.Enh == "4.7.1":
				nDeferred++
			default:
				nOther++
				sc.errorf(t, "session %d RCPT %s: unexpected reply %v", i, rc, e)
			}
		}
		if r.Accepted() {
			nQueued++
		} else if _, ok := r.Find("."); ok {
			sc.errorf(t, "session %d: message refused after DATA: %s", i, r.Summary())
		}
	}
	t.Logf("RCPT replies: %d × 250, %d × 450 4.7.1, %d other; %d messages queued", nOK, nDeferred, nOther, nQueued)
	if nOK != limit {
		sc.errorf(t, "Postfix accepted %d recipients, want exactly %d", nOK, limit)
	}
	if nOK+nDeferred+nOther != sessions*perMsg {
		sc.errorf(t, "%d RCPT replies, want %d", nOK+nDeferred+nOther, sessions*perMsg)
	}

	sc.settle(t)
	got, n := delivered(account)
	if n != limit {
		sc.errorf(t, "sink holds %d recipient deliveries from %s, want exactly %d", n, account, limit)
	}
	for rc := range accepted {
		if got[rc] != 1 {
			sc.errorf(t, "accepted recipient %s delivered %d times", rc, got[rc])
		}
	}
	for rc := range got {
		if !accepted[rc] {
			sc.errorf(t, "recipient %s delivered but not accepted at RCPT", rc)
		}
	}
	// A session whose RCPTs all fail writes an "aborted" line when the
	// milter refused one of them: the policy check passed, then another
	// session's reservation took the last relay before this one's. Such
	// lines must count nothing; each queued message has one "accept" line.
	ds := sb.Relaycap.Decisions(account)
	maxUsed, sum, nAccept := 0, 0, 0
	for _, d := range ds {
		switch d.Result {
		case "accept":
			nAccept++
			sum += d.Accepted
			maxUsed = max(maxUsed, d.Used)
			if d.Used > limit {
				sc.errorf(t, "decision with used=%d > %d: %s", d.Used, limit, d.Line)
			}
		case "aborted":
			if d.Accepted != 0 {
				sc.errorf(t, "aborted message counted %d relays: %s", d.Accepted, d.Line)
			}
		default:
			sc.errorf(t, "unexpected decision: %s", d.Line)
		}
	}
	if nAccept != nQueued || sum != limit || maxUsed != limit {
		sc.errorf(t, "%d accept decisions (want %d), accepted sum %d, max used %d (want %d):\n%s",
			nAccept, nQueued, sum, maxUsed, limit, decisionLines(ds))
	}
}
