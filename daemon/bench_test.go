package daemon

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	gomilter "github.com/d--j/go-milter"
)

// BenchmarkPolicyRequest is one RCPT-state policy request and its answer
// over a unix socket, on a kept-open connection as Postfix uses it.
func BenchmarkPolicyRequest(b *testing.B) {
	td := startDaemon(b, "quota: {default_daily_limit: 1000000}\n")
	p := td.policyConn(b)
	req := rcptRequest("alice@example.com")
	b.ReportAllocs()
	for b.Loop() {
		if a := p.ask(req); a != "DUNNO" {
			b.Fatal(a)
		}
	}
}

// BenchmarkMilterTransaction is one whole message over a unix socket, as
// Postfix sends it on a new SMTP connection: negotiate, connect, MAIL,
// RCPTs, headers, end of message (commit, synced to disk, and the token).
func BenchmarkMilterTransaction(b *testing.B) {
	for _, n := range []int{1, 10} {
		b.Run(fmt.Sprintf("rcpts=%d", n), func(b *testing.B) {
			td := startDaemon(b, "store: {sync_writes: true}\nquota: {default_daily_limit: 100000000}\n")
			var next atomic.Int64
			b.ReportAllocs()
			for b.Loop() {
				s := td.milterSession(b)
				s.mail(fmt.Sprintf("user%d@example.com", next.Add(1)%1000))
				if ok, _ := s.rcpts(n); ok != n {
					b.Fatalf("accepted %d of %d", ok, n)
				}
				if _, act := s.data(plainHeaders); act.Type != gomilter.ActionAccept {
					b.Fatal(act)
				}
				s.s.Close()
			}
			if !strings.Contains(td.logs.String(), "result=accept") {
				b.Fatal("no message accepted")
			}
		})
	}
}
