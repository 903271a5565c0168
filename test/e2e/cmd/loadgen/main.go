//go:build e2e

// Command loadgen is relaycap's end-to-end load benchmark (make bench-e2e).
// It brings the e2e sandbox up (real Postfix, Dovecot, relaycap, our sink)
// and pushes the same load through three listeners in one run:
//
//	(a) the XCLIENT listener: the client claims XCLIENT LOGIN=<account>, so
//	    Postfix treats it as SASL-authenticated without TLS and AUTH in the
//	    way; relaycap's policy service and milter are on;
//	(f) the same with the floor instead of relaycap: test/load/floor's
//	    do-nothing policy server and milter, which negotiates relaycap's
//	    milter stages and macros;
//	(b) the bench-plain listener: no auth, no milter, no policy.
//
// (a) and (f) alternate, -rounds times each. It prints messages/s for each
// and the ratios a/f and a/b, and exits 1 when a/f is below -goal.
// Loopback only; every loop is bounded by the message count.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/relaycap/relaycap/test/e2e"
)

const account = "load@example.com"

func main() {
	var (
		messages = flag.Int("messages", 2000, "messages per phase")
		rcpts    = flag.Int("rcpts", 5, "recipients per message")
		conns    = flag.Int("conns", 10, "concurrent SMTP connections")
		warmup   = flag.Int("warmup", 100, "unmeasured messages per phase first")
		rounds   = flag.Int("rounds", 2, "alternations of relaycap and the floor; each sends messages/rounds")
		goal     = flag.Float64("goal", 0, "exit 1 when relaycap's rate is below this share of the floor's (0: report only)")
		bin      = flag.String("relaycap", "", "relaycap binary (default: build ./cmd/relaycap)")
		verbose  = flag.Bool("v", false, "log the sandbox's progress")
	)
	flag.Parse()
	if *messages < 1 || *rcpts < 1 || *conns < 1 || *messages > 1e6 || *rcpts > 100 || *conns > 100 || *rounds < 1 || *rounds > *messages {
		fmt.Fprintln(os.Stderr, "loadgen: messages 1..1e6, rcpts 1..100, conns 1..100, rounds 1..messages")
		os.Exit(2)
	}
	logf := func(string, ...any) {}
	if *verbose {
		logf = func(f string, a ...any) { fmt.Fprintf(os.Stderr, "loadgen: "+f+"\n", a...) }
	}
	limit := 100000
	if need := (*messages + *warmup) * *rcpts; need > limit {
		limit = need
	}
	floorDir, err := os.MkdirTemp("", "loadgen-floor-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
	defer os.RemoveAll(floorDir)
	floor, err := buildFloor(floorDir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
	h, err := e2e.Up(context.Background(), e2e.Options{
		Relaycap: *bin,
		Floor:    floor,
		Accounts: []e2e.Account{{Name: account, Password: "pw-load", Limit: limit}},
		Logf:     logf,
	}, true)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
	code := run(h.SB, *messages, *warmup, *rcpts, *conns, *rounds, *goal)
	if err := h.Close("done"); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen: teardown:", err)
	}
	os.RemoveAll(floorDir)
	os.Exit(code)
}

// buildFloor builds test/load/floor into dir.
func buildFloor(dir string) (string, error) {
	root, err := e2e.ModuleRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "floor")
	cmd := exec.Command("go", "build", "-o", bin, "./test/load/floor")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./test/load/floor: %w\n%s", err, out)
	}
	return bin, nil
}

type phase struct {
	name     string
	l        e2e.Listener
	login    string // XCLIENT LOGIN=, "" for none
	rate     float64
	ok, fail int64
	elapsed  time.Duration
	drained  time.Duration // until the sink held every accepted message
	firstErr string
}

func run(sb *e2e.Sandbox, messages, warmup, rcpts, conns, rounds int, goal float64) int {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	plain := &phase{name: "(b) bench-plain: no auth, no milter, no policy", l: sb.Plain}
	floor := &phase{name: "(f) XCLIENT LOGIN + do-nothing policy + milter", l: sb.XClientFloor, login: account}
	relaycap := &phase{name: "(a) XCLIENT LOGIN + relaycap policy + milter", l: sb.XClient, login: account}
	fmt.Printf("bench-e2e: %d messages × %d recipients over %d connections per listener, (a) and (f) alternating in %d rounds (after %d warm-up messages), loopback\n",
		messages, rcpts, conns, rounds, warmup)
	for _, p := range []*phase{plain, floor, relaycap} {
		if warmup > 0 {
			w := *p
			if err := load(ctx, sb, &w, warmup, rcpts, min(conns, warmup)); err != nil || w.fail > 0 {
				fmt.Fprintf(os.Stderr, "loadgen: warm-up on %s failed: %v %s\n", p.name, err, w.firstErr)
				return 1
			}
		}
	}
	if err := measure(ctx, sb, plain, messages, rcpts, conns); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		return 1
	}
	for r := range rounds {
		n := messages / rounds
		if r == rounds-1 {
			n = messages - n*(rounds-1)
		}
		order := []*phase{floor, relaycap}
		if r%2 == 1 {
			order = []*phase{relaycap, floor}
		}
		for _, p := range order {
			if err := measure(ctx, sb, p, n, rcpts, conns); err != nil {
				fmt.Fprintln(os.Stderr, "loadgen:", err)
				return 1
			}
		}
	}
	for _, p := range []*phase{plain, floor, relaycap} {
		p.rate = float64(p.ok) / p.elapsed.Seconds()
		fmt.Printf("  %-50s %7.1f msg/s  (%d accepted, %d failed in %v)\n",
			p.name, p.rate, p.ok, p.fail, p.elapsed.Round(time.Millisecond))
		if p.firstErr != "" {
			fmt.Printf("      first failure: %s\n", p.firstErr)
		}
	}
	if plain.rate > 0 {
		fmt.Printf("  ratio a/b: %.2f (relaycap costs %.0f%% of the plain throughput)\n", relaycap.rate/plain.rate, 100*(1-relaycap.rate/plain.rate))
	}
	code := 0
	if floor.rate > 0 {
		ratio := relaycap.rate / floor.rate
		verdict := ""
		if goal > 0 {
			verdict = fmt.Sprintf(", goal >= %.2f: ok", goal)
			if ratio < goal {
				verdict, code = fmt.Sprintf(", goal >= %.2f: MISSED", goal), 1
			}
		}
		fmt.Printf("  ratio a/f: %.2f (relaycap %.1f msg/s / floor %.1f msg/s%s)\n", ratio, relaycap.rate, floor.rate, verdict)
	}
	if sb.Relaycap != nil {
		ds := sb.Relaycap.Decisions(account)
		if len(ds) > 0 {
			last := ds[len(ds)-1]
			fmt.Printf("  relaycap: %d decision lines for %s; last: used=%d limit=%d\n", len(ds), account, last.Used, last.Limit)
		}
	}
	if relaycap.fail > 0 || floor.fail > 0 || plain.fail > 0 {
		return 1
	}
	return code
}

// measure runs one phase of n messages on p's listener and adds what it
// did to p's totals.
func measure(ctx context.Context, sb *e2e.Sandbox, p *phase, n, rcpts, conns int) error {
	one := phase{name: p.name, l: p.l, login: p.login}
	if err := load(ctx, sb, &one, n, rcpts, conns); err != nil {
		return err
	}
	p.ok += one.ok
	p.fail += one.fail
	p.elapsed += one.elapsed
	if p.firstErr == "" {
		p.firstErr = one.firstErr
	}
	return nil
}

// load sends n messages over conns connections and waits until the sink
// holds every accepted one.
func load(ctx context.Context, sb *e2e.Sandbox, p *phase, n, rcpts, conns int) error {
	before := sb.Sink.Count()
	var next, ok, fail atomic.Int64
	var errOnce sync.Once
	var wg sync.WaitGroup
	t0 := time.Now()
	for c := 0; c < conns; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := session(ctx, p.l.Port, p.login, rcpts, func() bool { return next.Add(1) <= int64(n) }, &ok, &fail)
			if err != nil {
				errOnce.Do(func() { p.firstErr = err.Error() })
			}
		}()
	}
	wg.Wait()
	p.elapsed = time.Since(t0)
	p.ok, p.fail = ok.Load(), fail.Load()
	p.rate = float64(p.ok) / p.elapsed.Seconds()
	dctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	if err := sb.Sink.WaitCount(dctx, before+int(p.ok)); err != nil {
		return fmt.Errorf("%s: %w", p.name, err)
	}
	p.drained = time.Since(t0)
	return nil
}

// session runs one SMTP connection and sends messages while take() says
// so. A refused message counts as failed and the session goes on (RSET);
// a broken connection ends it, its unsent share counted by the others.
func session(ctx context.Context, port int, login string, rcpts int, take func() bool, ok, fail *atomic.Int64) error {
	d := net.Dialer{Timeout: 10 * time.Second}
	nc, err := d.DialContext(ctx, "tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return err
	}
	defer nc.Close()
	c := textproto.NewConn(nc)
	step := func(expect int, format string, args ...any) error {
		nc.SetDeadline(time.Now().Add(60 * time.Second))
		if format != "" {
			if _, err := c.Cmd(format, args...); err != nil {
				return err
			}
		}
		_, _, err := c.ReadResponse(expect)
		return err
	}
	if err := step(220, ""); err != nil {
		return err
	}
	if err := step(250, "EHLO loadgen.e2e.test"); err != nil {
		return err
	}
	if login != "" {
		// Postfix answers XCLIENT with a fresh greeting; EHLO again.
		if err := step(220, "XCLIENT LOGIN=%s", login); err != nil {
			return fmt.Errorf("XCLIENT: %w", err)
		}
		if err := step(250, "EHLO loadgen.e2e.test"); err != nil {
			return err
		}
	}
	for i := 0; take(); i++ {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		err := message(c, nc, step, login, rcpts, i)
		if err == nil {
			ok.Add(1)
			continue
		}
		fail.Add(1)
		if _, isProto := err.(*textproto.Error); !isProto {
			return err
		}
		if err := step(250, "RSET"); err != nil {
			return err
		}
	}
	step(221, "QUIT")
	return nil
}

func message(c *textproto.Conn, nc net.Conn, step func(int, string, ...any) error, login string, rcpts, i int) error {
	from := login
	if from == "" {
		from = "plain-load@example.com"
	}
	if err := step(250, "MAIL FROM:<%s>", from); err != nil {
		return err
	}
	for r := 0; r < rcpts; r++ {
		if err := step(250, "RCPT TO:<load-%d-%d@remote.example>", i, r); err != nil {
			return err
		}
	}
	if err := step(354, "DATA"); err != nil {
		return err
	}
	w := c.DotWriter()
	fmt.Fprintf(w, "From: <%s>\r\nTo: undisclosed-recipients:;\r\nSubject: load %d\r\nMessage-Id: <%s>\r\n\r\n",
		from, i, e2e.NewMessageID("load"))
	io.WriteString(w, "relaycap e2e load message.\r\nA few lines of body, typical of a short notification.\r\n")
	if err := w.Close(); err != nil {
		return err
	}
	return step(250, "")
}
