//go:build e2e

package e2e_test

import (
	"context"
	"testing"
	"time"

	"github.com/relaycap/relaycap/internal/redistest"
	"github.com/relaycap/relaycap/test/e2e"
)

// TestTwoHostsShareOneRedis (scenario 13): two more sandboxes, each a
// Postfix + Dovecot with its own relaycap (store.backend: redis), share one
// redis-server. One account with limit 6 sends one-recipient messages
// through both hosts in turn: exactly 6 are relayed, in all, and the rest
// get 450 4.7.1 at RCPT on whichever host they try.
func TestTwoHostsShareOneRedis(t *testing.T) {
	sc := begin(t, true)
	srv := redistest.Start(t)
	const account = "shared@example.com"
	acct := e2e.Account{Name: account, Limit: 6, Password: "pw-shared"}
	var hosts []*e2e.Sandbox
	for i := range 2 {
		h, err := e2e.Up(sc.ctx, e2e.Options{
			Relaycap: harness.Bin, Accounts: []e2e.Account{acct},
			Redis: srv.Addr, RedisPrefix: "e2e13:", Logf: logf,
		}, true)
		if err != nil {
			t.Fatalf("host %d: %v", i, err)
		}
		t.Cleanup(func() { h.Close("scenario 13 done") })
		hosts = append(hosts, h.SB)
	}

	sent, refused := 0, 0
	for i := range 10 {
		h := hosts[i%2]
		to := rcpts("shared", 1)
		r := sc.send(t, e2e.Send{Listener: h.Listeners[1], Auth: "PLAIN", User: account, Password: acct.Password, From: account, To: to})
		e := r.Rcpts()[to[0]]
		switch {
		case e.Code == 250 && r.Accepted():
			sent++
		case e.Code == 450 && e.Enh == "4.7.1":
			refused++
		default:
			sc.fatalf(t, "message %d via host %d: RCPT %v: %s", i+1, i%2, e, r.Summary())
		}
	}
	if sent != 6 || refused != 4 {
		sc.fatalf(t, "10 messages over two hosts, limit 6: %d relayed, %d refused; want 6 and 4", sent, refused)
	}
	ctx, cancel := context.WithTimeout(sc.ctx, time.Minute)
	defer cancel()
	total := 0
	for i, h := range hosts {
		if err := h.WaitQueueEmpty(ctx); err != nil {
			sc.fatalf(t, "host %d: %v", i, err)
		}
		for _, m := range h.Sink.From(account) {
			total += len(m.Rcpts)
		}
	}
	if total != 6 {
		sc.fatalf(t, "the two sinks received %d deliveries from %s, want 6", total, account)
	}
}
