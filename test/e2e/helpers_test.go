//go:build e2e

package e2e_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaycap/relaycap/test/e2e"
)

// scenario carries what one top-level test needs: its transcripts (logged
// when it fails, with the tails of every log) and a deadline.
type scenario struct {
	t   *testing.T
	ctx context.Context

	mu          sync.Mutex
	transcripts []string
	failures    []string // repeated after the diagnostics: CI shows a run's tail
}

// begin starts a scenario. needDaemon: it cannot run without relaycap.
func begin(t *testing.T, needDaemon bool) *scenario {
	t.Helper()
	if sb == nil {
		t.Fatal("no sandbox (TestMain did not bring it up)")
	}
	if harness.Interrupted() {
		t.Fatal("interrupted")
	}
	if needDaemon && sb.Relaycap == nil {
		t.Fatalf("relaycap is not running (%s=1?)", NoDaemonEnv)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	sc := &scenario{t: t, ctx: ctx}
	t.Cleanup(func() {
		cancel()
		if !t.Failed() || harness.Interrupted() {
			return
		}
		sc.mu.Lock()
		defer sc.mu.Unlock()
		for _, tr := range sc.transcripts {
			t.Log(tr)
		}
		t.Log(sb.Diagnostics(60))
		if len(sc.failures) > 0 {
			t.Logf("---- %s failed (repeated from above):\n%s", t.Name(), strings.Join(sc.failures, "\n"))
		}
	})
	return sc
}

// errorf is t.Errorf that also keeps the message for the closing summary.
func (sc *scenario) errorf(t testing.TB, format string, args ...any) {
	t.Helper()
	sc.keep(t, format, args)
	t.Errorf(format, args...)
}

// fatalf is t.Fatalf that also keeps the message for the closing summary.
func (sc *scenario) fatalf(t testing.TB, format string, args ...any) {
	t.Helper()
	sc.keep(t, format, args)
	t.Fatalf(format, args...)
}

func (sc *scenario) keep(t testing.TB, format string, args []any) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	sc.failures = append(sc.failures, t.Name()+": "+fmt.Sprintf(format, args...))
}

// send runs swaks; t may be a subtest of the scenario.
func (sc *scenario) send(t testing.TB, s e2e.Send) *e2e.SwaksResult {
	t.Helper()
	r, err := e2e.Swaks(sc.ctx, s)
	sc.record(r)
	if err != nil {
		sc.fatalf(t, "%v", err)
	}
	t.Logf("%s via %v: %s (%v)", s.From, s.Listener, r.Summary(), r.Duration.Round(time.Millisecond))
	return r
}

// record keeps a transcript for the failure report.
func (sc *scenario) record(r *e2e.SwaksResult) {
	if r == nil {
		return
	}
	sc.mu.Lock()
	defer sc.mu.Unlock()
	sc.transcripts = append(sc.transcripts, fmt.Sprintf("---- %s\n%s", r.CommandLine(), r.Transcript))
}

func itoa(i int) string { return strconv.Itoa(i) }

// as builds a Send for an account's login, with recipients to.
func as(name string, l e2e.Listener, to []string) e2e.Send {
	a, ok := sb.Account(name)
	if !ok {
		panic("no account " + name)
	}
	return e2e.Send{Listener: l, Auth: "PLAIN", User: a.Name, Password: a.Password, From: a.Name, To: to}
}

var rcptSeq sync.Mutex
var rcptN int

// rcpts returns n fresh recipient addresses at the remote domain.
func rcpts(tag string, n int) []string {
	rcptSeq.Lock()
	defer rcptSeq.Unlock()
	out := make([]string, n)
	for i := range out {
		rcptN++
		out[i] = fmt.Sprintf("%s-%d@remote.example", tag, rcptN)
	}
	return out
}

// settle waits until Postfix's queue is empty: everything accepted has
// reached the sink, so counts taken afterwards are final.
func (sc *scenario) settle(t testing.TB) {
	t.Helper()
	if err := sb.WaitQueueEmpty(sc.ctx); err != nil {
		sc.fatalf(t, "%v", err)
	}
}

// delivered returns the sink's recipients for messages from one sender,
// as a set, and the total number of recipient deliveries.
func delivered(from string) (map[string]int, int) {
	set := map[string]int{}
	n := 0
	for _, m := range sb.Sink.From(from) {
		for _, r := range m.Rcpts {
			set[strings.ToLower(r)]++
			n++
		}
	}
	return set, n
}

// lastDecision waits for n decision lines of an account and returns the
// last one.
func (sc *scenario) lastDecision(t testing.TB, account string, n int) e2e.Decision {
	t.Helper()
	ctx, cancel := context.WithTimeout(sc.ctx, 10*time.Second)
	defer cancel()
	ds, err := sb.Relaycap.WaitDecisions(ctx, account, n)
	if err != nil {
		sc.fatalf(t, "%v", err)
	}
	if len(ds) != n {
		sc.errorf(t, "%d decision lines for %s, want %d:\n%s", len(ds), account, n, decisionLines(ds))
	}
	return ds[len(ds)-1]
}

func decisionLines(ds []e2e.Decision) string {
	var b strings.Builder
	for _, d := range ds {
		b.WriteString(d.Line)
		b.WriteByte('\n')
	}
	return b.String()
}

// wantReply checks code and enhanced status of one reply.
func (sc *scenario) wantReply(t testing.TB, what string, e e2e.Exchange, code int, enh string) {
	t.Helper()
	if e.Code != code || (enh != "" && e.Enh != enh) {
		sc.errorf(t, "%s: got %q, want %d %s", what, e.String(), code, enh)
	}
}

// tailString returns the last n lines of s.
func tailString(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// waitPolicy asks relaycap's policy service about account until its action
// contains want, or the scenario's deadline passes.
func (sc *scenario) waitPolicy(t testing.TB, account, want string) {
	t.Helper()
	var last string
	for {
		action, err := sb.Relaycap.AskPolicy(account)
		if err != nil {
			sc.fatalf(t, "ask relaycap's policy service: %v", err)
		}
		if strings.Contains(action, want) {
			return
		}
		last = action
		select {
		case <-sc.ctx.Done():
			sc.fatalf(t, "relaycap's policy service still answers %q for %s, want %s", last, account, want)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
