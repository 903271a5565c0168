//go:build e2e

package e2e_test

import (
	"strings"
	"testing"
)

// TestStateDiskFull (scenario 9): relaycap's state directory is a tmpfs;
// filled until less than store.min_free_mb (64 MiB) is left, relaycap stops
// writing and Postfix turns every recipient away with a 4xx at RCPT;
// nothing is delivered, nothing is counted, the daemon keeps running.
// Once the space is back, mail flows on from the same totals without a
// restart. (Badger writes through mmap: a truly full disk would kill the
// process with SIGBUS, which the headroom prevents.)
func TestStateDiskFull(t *testing.T) {
	sc := begin(t, true)
	const account = "disk@example.com"
	l := sb.Listeners[1] // 2525-style STARTTLS

	r := sc.send(t, as(account, l, rcpts("disk", 2)))
	if !r.Accepted() {
		sc.fatalf(t, "first message not queued: %s", r.Summary())
	}
	pid := sb.Relaycap.PID()
	off := sb.Relaycap.LogSize()

	undo, err := sb.FillState(32 << 20)
	if err != nil {
		sc.fatalf(t, "%v", err)
	}
	filled := true
	defer func() {
		if filled {
			undo()
		}
	}()
	free, _ := sb.StateFree()
	t.Logf("state tmpfs filled: %.1f MiB free", float64(free)/(1<<20))
	// relaycap reuses a free-space reading above the threshold for up to a
	// second (badgerstore's spaceTTL): wait until it has seen the fill.
	sc.waitPolicy(t, account, "4.3.0")

	to := rcpts("disk-full", 2)
	r = sc.send(t, as(account, l, to))
	for _, rc := range to {
		sc.wantReply(t, "RCPT with the state disk full "+rc, r.Rcpts()[rc], 450, "4.3.0")
	}
	if r.Accepted() {
		sc.errorf(t, "message queued with the state disk full: %s", r.Summary())
	}
	logged := sb.Relaycap.LogSince(off)
	if !strings.Contains(logged, "low on disk space") || !strings.Contains(logged, "store.min_free_mb") {
		sc.errorf(t, "relaycap did not log why it refused; log since the fill:\n%s", logged)
	}

	if err := undo(); err != nil {
		sc.fatalf(t, "%v", err)
	}
	filled = false
	to = rcpts("disk-back", 2)
	r = sc.send(t, as(account, l, to))
	for _, rc := range to {
		sc.wantReply(t, "RCPT with space back "+rc, r.Rcpts()[rc], 250, "2.1.5")
	}
	if !r.Accepted() {
		sc.fatalf(t, "message with space back not queued: %s", r.Summary())
	}
	if got := sb.Relaycap.PID(); got != pid {
		sc.errorf(t, "relaycap PID changed %d → %d: it died on the full disk", pid, got)
	}
	if d := sc.lastDecision(t, account, 2); d.Used != 4 || d.Accepted != 2 {
		sc.errorf(t, "after the disk was freed: accepted=%d used=%d, want 2 and 4: %s", d.Accepted, d.Used, d.Line)
	}
	sc.settle(t)
	got, n := delivered(account)
	if n != 4 {
		sc.errorf(t, "sink holds %d deliveries from %s, want 4 (none while the disk was full): %v", n, account, got)
	}
}
