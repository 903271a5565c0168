package daemon

import (
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	gomilter "github.com/d--j/go-milter"

	"github.com/relaycap/relaycap/internal/redistest"
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

// BenchmarkPolicyRequestRedis is BenchmarkPolicyRequest with the counter
// on Redis (one peek script per request): one redis-server over a unix
// socket and a 3-node cluster on loopback. The figures compare with
// BenchmarkPolicyRequest's (Badger); p99-ns is the 99th percentile.
func BenchmarkPolicyRequestRedis(b *testing.B) {
	srv := redistest.Start(b)
	cluster := redistest.StartCluster(b, 3)
	for _, c := range []struct {
		name  string
		addrs []string
	}{{"node=unix", []string{srv.Addr}}, {"cluster=3", cluster.Addrs()}} {
		b.Run(c.name, func(b *testing.B) {
			td := startDaemon(b, fmt.Sprintf("store: {backend: redis, sync_writes: false, redis: {addrs: [%s]}}\n", quoteAll(c.addrs))+
				"quota: {default_daily_limit: 1000000}\n")
			p := td.policyConn(b)
			req := rcptRequest("alice@example.com")
			lat := make([]time.Duration, 0, b.N)
			b.ReportAllocs()
			for b.Loop() {
				start := time.Now()
				if a := p.ask(req); a != "DUNNO" {
					b.Fatal(a)
				}
				lat = append(lat, time.Since(start))
			}
			if len(lat) > 0 {
				slices.Sort(lat)
				b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
			}
		})
	}
}

func quoteAll(addrs []string) string {
	q := make([]string, len(addrs))
	for i, a := range addrs {
		q[i] = fmt.Sprintf("%q", a)
	}
	return strings.Join(q, ", ")
}

// BenchmarkMilterTransaction is one whole message over a unix socket, as
// Postfix sends it on a new SMTP connection: negotiate, connect, MAIL,
// RCPTs, headers, end of message (commit, synced to disk, and the token).
func BenchmarkMilterTransaction(b *testing.B) {
	benchMilterTransaction(b, "")
}

// BenchmarkMilterTransactionWebhook is BenchmarkMilterTransaction with a
// webhook configured (a real HTTP receiver on loopback): every commit goes
// through the event path, and crosses no threshold at this limit (a
// crossing is once per account and day). Its figures compare with
// BenchmarkMilterTransaction's.
func BenchmarkMilterTransactionWebhook(b *testing.B) {
	r := newHookReceiver(b, time.Now)
	go func() { // drain: the benchmark does not wait for deliveries
		for range r.got {
		}
	}()
	benchMilterTransaction(b, fmt.Sprintf("notify: {webhook_url: %q, secret_file: %q, thresholds: [10, 20, 30, 40, 50, 60, 70, 80, 90, 100]}\n",
		r.srv.URL, writeSecret(b)))
}

func benchMilterTransaction(b *testing.B, extra string) {
	for _, n := range []int{1, 10} {
		b.Run(fmt.Sprintf("rcpts=%d", n), func(b *testing.B) {
			td := startDaemon(b, extra+"store: {sync_writes: true}\nquota: {default_daily_limit: 100000000}\n")
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

// BenchmarkEngineCheck is the policy service's decision without the
// socket: the engine as the daemon wires it (Badger, its caches, the
// metrics wrappers) answering RCPT checks for 1000 default_daily_limit
// logins from parallel callers. It is the part of a policy request that
// the floor (make bench-floor) does not have.
func BenchmarkEngineCheck(b *testing.B) {
	td := startDaemon(b, "quota: {default_daily_limit: 1000000000}\n")
	logins := make([]string, 1000)
	for i := range logins {
		logins[i] = fmt.Sprintf("dflt%07d@example.com", i)
	}
	now := td.clock.now()
	var next atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for i := next.Add(7919); pb.Next(); i++ {
			d, err := td.Engine().Check(b.Context(), logins[i%int64(len(logins))], now)
			if err != nil || !d.Allowed() {
				b.Errorf("check: %v, %+v", err, d)
				return
			}
		}
	})
}
