//go:build e2e

package e2e_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/relaycap/relaycap/test/e2e"
)

// TestAuthListeners (scenario 1): AUTH PLAIN and AUTH LOGIN deliver on each
// of the five production listeners (STARTTLS and implicit TLS); a wrong
// password gets 535; relaying without AUTH is refused with 5.7.1 and counts
// nothing.
func TestAuthListeners(t *testing.T) {
	sc := begin(t, true)
	const account = "auth@example.com"
	a, _ := sb.Account(account)
	if len(sb.Listeners) != 5 {
		sc.fatalf(t, "%d production listeners, want 5 (25, 2525, 10025, 465, 10465)", len(sb.Listeners))
	}
	decisionsBefore := len(sb.Relaycap.Decisions(""))

	type sent struct{ id, rcpt string }
	var (
		mu       sync.Mutex
		good     []sent
		refused  []string // Message-Ids that must not reach the sink
		nRefused int
	)
	t.Run("deliver", func(t *testing.T) {
		for _, l := range sb.Listeners {
			for _, mech := range []string{"PLAIN", "LOGIN"} {
				t.Run(fmt.Sprintf("%s_%d/%s", l.Name, l.Role, mech), func(t *testing.T) {
					t.Parallel()
					s := as(account, l, rcpts("auth", 1))
					s.Auth = mech
					r := sc.send(t, s)
					if e, ok := r.AuthReply(); !ok || e.Code != 235 {
						sc.errorf(t, "AUTH %s: %v (found=%v), want 235", mech, e, ok)
					}
					if !r.Accepted() {
						sc.fatalf(t, "message not queued: %s", r.Summary())
					}
					mu.Lock()
					good = append(good, sent{r.MessageID, s.To[0]})
					mu.Unlock()
				})
			}
		}
	})

	t.Run("wrong_password", func(t *testing.T) {
		for i, l := range sb.Listeners {
			mech := []string{"PLAIN", "LOGIN"}[i%2]
			t.Run(fmt.Sprintf("%s_%d/%s", l.Name, l.Role, mech), func(t *testing.T) {
				t.Parallel()
				s := as(account, l, rcpts("badpw", 1))
				s.Auth, s.Password = mech, a.Password+"-wrong"
				r := sc.send(t, s)
				if e, ok := r.AuthReply(); !ok || e.Code != 535 || e.Enh != "5.7.8" {
					sc.errorf(t, "wrong password: AUTH answered %v (found=%v), want 535 5.7.8", e, ok)
				}
				if _, ok := r.Find("MAIL"); ok || r.Accepted() {
					sc.errorf(t, "swaks went on after a failed AUTH: %s", r.Summary())
				}
				mu.Lock()
				refused = append(refused, r.MessageID)
				mu.Unlock()
			})
		}
	})

	t.Run("unauthenticated", func(t *testing.T) {
		cases := []struct {
			name string
			l    e2e.Listener
			tls  bool
		}{
			{"starttls_" + sb.Listeners[0].Name, sb.Listeners[0], true},
			{"plaintext_" + sb.Listeners[1].Name, sb.Listeners[1], false},
			{"implicit_" + sb.Listeners[3].Name, sb.Listeners[3], true},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				t.Parallel()
				to := rcpts("noauth", 2)
				r := sc.send(t, e2e.Send{Listener: c.l, NoTLS: !c.tls, From: "anyone@example.com", To: to})
				for _, rc := range to {
					e, ok := r.Rcpts()[rc]
					if !ok {
						sc.errorf(t, "no RCPT reply for %s: %s", rc, r.Summary())
						continue
					}
					// smtpd_relay_restrictions = permit_sasl_authenticated, reject:
					// Postfix says "554 5.7.1 <rcpt>: Recipient address rejected:
					// Access denied" (reject_unauth_destination would say "Relay
					// access denied"; same code).
					if e.Code != 554 || e.Enh != "5.7.1" || !strings.Contains(strings.ToLower(e.Text), "access denied") {
						sc.errorf(t, "RCPT %s: %v, want 554 5.7.1 … Access denied", rc, e)
					}
					mu.Lock()
					nRefused++
					mu.Unlock()
				}
				if r.Accepted() {
					sc.errorf(t, "unauthenticated message was queued: %s", r.Summary())
				}
				mu.Lock()
				refused = append(refused, r.MessageID)
				mu.Unlock()
			})
		}
	})

	sc.settle(t)
	for _, g := range good {
		ms := sb.Sink.ByMessageID(g.id)
		if len(ms) != 1 || len(ms[0].Rcpts) != 1 || ms[0].Rcpts[0] != g.rcpt {
			sc.errorf(t, "sink: %d copies of %s (want 1 for %s): %+v", len(ms), g.id, g.rcpt, ms)
		}
	}
	for _, id := range refused {
		if ms := sb.Sink.ByMessageID(id); len(ms) != 0 {
			sc.errorf(t, "refused message %s reached the sink", id)
		}
	}
	if _, n := delivered(account); n != len(good) {
		sc.errorf(t, "sink holds %d deliveries from %s, want %d", n, account, len(good))
	}
	if _, n := delivered("anyone@example.com"); n != 0 {
		sc.errorf(t, "sink holds %d unauthenticated deliveries, want 0", n)
	}
	// Counts: one decision per delivered message, used = delivered
	// recipients; the refused sessions added no decision line at all.
	last := sc.lastDecision(t, account, len(good))
	if last.Used != len(good) || last.Limit != a.Limit {
		sc.errorf(t, "last decision used=%d limit=%d, want %d/%d: %s", last.Used, last.Limit, len(good), a.Limit, last.Line)
	}
	if all := sb.Relaycap.Decisions(""); len(all)-decisionsBefore != len(good) {
		sc.errorf(t, "%d decision lines during this scenario, want %d (refused sessions must count nothing):\n%s",
			len(all)-decisionsBefore, len(good), decisionLines(all[decisionsBefore:]))
	}
	t.Logf("%d messages delivered through %d listeners; %d unauthenticated recipients refused; relaycap: %s",
		len(good), len(sb.Listeners), nRefused, last.Line)
}
