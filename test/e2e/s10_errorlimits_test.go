//go:build e2e

package e2e_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaycap/relaycap/postfixconf"
	"github.com/relaycap/relaycap/test/e2e"
)

// TestErrorLimits (scenario 10): a message to more recipients than the
// account has left is sent to those it has, not dropped. Every refused
// RCPT is an smtpd error; on a listener with Postfix's default limits
// (soft 10, hard 20) the session ends at the 20th refusal with "421 4.7.0
// Error: too many errors" and nothing is queued (the control). With the
// README's listener lines (both limits raised to smtpd_recipient_limit)
// the same message to 300 recipients with 200 relays left goes out to 200,
// the other 100 are deferred with 450 4.7.1, and the message is queued.
func TestErrorLimits(t *testing.T) {
	sc := begin(t, true)
	const account = "bulk@example.com"
	a, _ := sb.Account(account)

	t.Run("postfix_defaults_drop_the_message", func(t *testing.T) {
		to := rcpts("bulk-control", 300)
		r := sc.send(t, as(account, sb.DefaultLimits, to))
		codes := r.RcptCodes()
		var dropped bool
		for _, e := range r.Exchanges {
			if e.Code == 421 && e.Enh == "4.7.0" && strings.Contains(e.Text, "too many errors") {
				dropped = true
			}
		}
		if !dropped || r.Accepted() || codes[250] != a.Limit || codes[450] != 20 {
			sc.errorf(t, "default limits: want 200 × 250, 20 × 450, then 421 4.7.0 too many errors and no queued message; got RCPT codes %v, 421=%v, queued=%v",
				codes, dropped, r.Accepted())
		}
	})

	t.Run("readme_limits_queue_it", func(t *testing.T) {
		to := rcpts("bulk", 300)
		r := sc.send(t, as(account, sb.Listeners[1], to))
		replies := r.Rcpts()
		for i, rc := range to {
			if i < a.Limit {
				sc.wantReply(t, "RCPT "+rc, replies[rc], 250, "2.1.5")
			} else {
				sc.wantReply(t, "RCPT "+rc, replies[rc], 450, "4.7.1")
			}
		}
		if !r.Accepted() {
			sc.fatalf(t, "message to 300 recipients with 200 relays left not queued: %s", r.Summary())
		}
		sc.settle(t)
		// Postfix hands the 200 recipients to the sink in several SMTP
		// transactions (default_destination_recipient_limit = 50), all of
		// this one message.
		got, n := delivered(account)
		copies := 0
		for _, m := range sb.Sink.ByMessageID(r.MessageID) {
			copies += len(m.Rcpts)
		}
		if n != a.Limit || copies != a.Limit {
			sc.errorf(t, "sink holds %d deliveries from %s, %d of them of message %s; want %d, all of it", n, account, copies, r.MessageID, a.Limit)
		}
		for _, rc := range to[:a.Limit] {
			if got[rc] != 1 {
				sc.errorf(t, "accepted recipient %s delivered %d times, want 1", rc, got[rc])
			}
		}
		// The control's 200 reservations were released when Postfix dropped
		// the session: this message alone uses the quota.
		d := sc.decisionFor(t, account, r.QueueID())
		if d.Accepted != a.Limit || d.Used != a.Limit || d.Limit != a.Limit || d.Result != "accept" {
			sc.errorf(t, "decision: want accepted=used=limit=%d result=accept: %s", a.Limit, d.Line)
		}
		t.Logf("relaycap: %s", d.Line)
	})
}

// TestAuthRateLimit (scenario 10): with the error limits raised, a failed
// AUTH no longer ends a session soon, so the README bounds password
// guessing with smtpd_client_auth_rate_limit (anvil, per client and
// listener and minute). 30 wrong passwords from one client at once: the
// first 20 reach Dovecot (535 5.7.8, after auth_failure_delay), the other
// 10 get "450 4.7.1 Error: too many AUTH commands"; and so does the right
// password right after, whatever it is. On the sandbox's AuthLimit
// listener loopback is not exempt ($mynetworks) as it is elsewhere.
func TestAuthRateLimit(t *testing.T) {
	sc := begin(t, true)
	const account, tries = "guess@example.com", 30
	a, _ := sb.Account(account)
	if postfixconf.AuthRateLimit >= tries {
		sc.fatalf(t, "smtpd_client_auth_rate_limit %d: the scenario's %d tries would not pass it", postfixconf.AuthRateLimit, tries)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		codes = map[string]int{}
	)
	for i := 0; i < tries; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := as(account, sb.AuthLimit, rcpts("guess", 1))
			s.Password = a.Password + "-guess-" + itoa(i)
			r, err := e2e.Swaks(sc.ctx, s)
			sc.record(r)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				codes["swaks failed: "+err.Error()]++
				return
			}
			e, _ := r.AuthReply()
			codes[itoa(e.Code)+" "+e.Enh]++
			if r.Accepted() {
				codes["queued"]++
			}
		}()
	}
	wg.Wait()
	want := map[string]int{"535 5.7.8": postfixconf.AuthRateLimit, "450 4.7.1": tries - postfixconf.AuthRateLimit}
	if len(codes) != len(want) || codes["535 5.7.8"] != want["535 5.7.8"] || codes["450 4.7.1"] != want["450 4.7.1"] {
		sc.errorf(t, "%d wrong passwords: AUTH replies %v, want %v", tries, codes, want)
	}

	r := sc.send(t, as(account, sb.AuthLimit, rcpts("guess-right", 1)))
	if e, ok := r.AuthReply(); !ok || e.Code != 450 || e.Enh != "4.7.1" || !strings.Contains(e.Text, "too many AUTH commands") {
		sc.errorf(t, "the right password after %d tries: AUTH %v (found=%v), want 450 4.7.1 … too many AUTH commands", tries, e, ok)
	}
	if r.Accepted() {
		sc.errorf(t, "a rate-limited session queued a message: %s", r.Summary())
	}
	if !strings.Contains(sb.Maillog(), "AUTH command rate limit exceeded") {
		sc.errorf(t, "maillog has no \"AUTH command rate limit exceeded\" warning")
	}
	// The same right password on a listener where loopback is exempt: the
	// account itself is fine, only the guessing client was slowed.
	ok := sc.send(t, as(account, sb.Listeners[1], rcpts("guess-ok", 1)))
	if e, _ := ok.AuthReply(); e.Code != 235 || !ok.Accepted() {
		sc.errorf(t, "right password on an exempt listener: %s", ok.Summary())
	}
	sc.settle(t)
}

// decisionFor waits for the decision line of one queued message.
func (sc *scenario) decisionFor(t testing.TB, account, queueID string) e2e.Decision {
	t.Helper()
	ctx, cancel := context.WithTimeout(sc.ctx, 10*time.Second)
	defer cancel()
	for {
		for _, d := range sb.Relaycap.Decisions(account) {
			if d.QueueID == queueID {
				return d
			}
		}
		select {
		case <-ctx.Done():
			sc.fatalf(t, "no decision line for %s queue id %q:\n%s", account, queueID, decisionLines(sb.Relaycap.Decisions(account)))
		case <-time.After(50 * time.Millisecond):
		}
	}
}
