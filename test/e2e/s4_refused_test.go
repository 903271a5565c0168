//go:build e2e

package e2e_test

import (
	"strings"
	"testing"
)

// TestRefusedLogins (scenario 4): a suspended account and a login relaycap
// does not know (default_daily_limit 0: not provisioned) authenticate fine
// but every recipient is refused with 5.7.1 at RCPT; nothing is delivered.
// The policy service refuses first with "REJECT 5.7.1 …", so the code is
// Postfix's access_map_reject_code (554 by default); the milter behind it
// would say 550.
func TestRefusedLogins(t *testing.T) {
	sc := begin(t, true)
	for _, c := range []struct{ name, account, why string }{
		{"suspended", "suspended@example.com", "Account suspended@example.com is suspended"},
		{"unprovisioned", "stranger@example.com", "Account stranger@example.com has no relay quota"},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, l := range []int{0, 4} { // a STARTTLS and an implicit-TLS listener
				to := rcpts(c.name, 2)
				r := sc.send(t, as(c.account, sb.Listeners[l], to))
				if e, ok := r.AuthReply(); !ok || e.Code != 235 {
					sc.errorf(t, "AUTH: %v, want 235 (Dovecot knows the login)", e)
				}
				for _, rc := range to {
					e := r.Rcpts()[rc]
					sc.wantReply(t, "RCPT "+rc, e, 554, "5.7.1")
					if !strings.Contains(e.Text, c.why) {
						sc.errorf(t, "RCPT %s: %q does not say %q", rc, e.Text, c.why)
					}
				}
				if r.Accepted() || r.ExitCode != 24 {
					sc.errorf(t, "exit %d, want 24 (no RCPT accepted) and no DATA: %s", r.ExitCode, r.Summary())
				}
			}
		})
	}
	sc.settle(t)
	for _, a := range []string{"suspended@example.com", "stranger@example.com"} {
		if _, n := delivered(a); n != 0 {
			sc.errorf(t, "sink holds %d deliveries from %s, want 0", n, a)
		}
		for _, d := range sb.Relaycap.Decisions(a) {
			if d.Accepted != 0 || d.Used != 0 {
				sc.errorf(t, "decision counts something for %s: %s", a, d.Line)
			}
		}
	}
}
