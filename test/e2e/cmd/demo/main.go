//go:build e2e

// Command demo (make demo) brings the e2e sandbox up, sends messages of 2
// recipients each as an account with a daily limit of 5 until relaycap
// refuses them, and shows what happened: the SMTP replies, relaycap's
// decision lines, and the identification header of a delivered message
// decoded by `relaycap id decode` (when the binary has it). Then it tears
// everything down.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/relaycap/relaycap/test/e2e"
)

const (
	account  = "demo@example.com"
	password = "pw-demo"
	limit    = 5
)

func main() {
	bin := flag.String("relaycap", "", "relaycap binary (default: build ./cmd/relaycap)")
	verbose := flag.Bool("v", false, "show the full swaks transcripts")
	flag.Parse()
	say := func(f string, a ...any) { fmt.Printf(f+"\n", a...) }
	h, err := e2e.Up(context.Background(), e2e.Options{
		Relaycap: *bin,
		Accounts: []e2e.Account{{Name: account, Password: password, Limit: limit}},
		KeepData: true,
		Logf:     func(f string, a ...any) { say("· "+f, a...) },
	}, true)
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
	code := demo(h, *verbose, say)
	if err := h.Close("demo finished"); err != nil {
		fmt.Fprintln(os.Stderr, "demo: teardown:", err)
	}
	os.Exit(code)
}

func demo(h *e2e.Harness, verbose bool, say func(string, ...any)) int {
	sb := h.SB
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	l := sb.Listeners[1] // the 2525-style STARTTLS listener
	say("\n== %s (daily limit %d) sends messages of 2 recipients through %v with STARTTLS + AUTH PLAIN", account, limit, l)
	var lastQueued *e2e.SwaksResult
	for i := 1; i <= 5; i++ {
		to := []string{fmt.Sprintf("friend%d-a@remote.example", i), fmt.Sprintf("friend%d-b@remote.example", i)}
		r, err := e2e.Swaks(ctx, e2e.Send{Listener: l, Auth: "PLAIN", User: account, Password: password, From: account, To: to})
		if err != nil {
			fmt.Fprintln(os.Stderr, "demo:", err)
			return 1
		}
		say("\n-- message %d", i)
		if verbose {
			say("%s", r.Transcript)
		}
		for _, e := range r.Exchanges {
			if strings.HasPrefix(e.Cmd, "RCPT") || e.Cmd == "." || e.Code >= 400 {
				cmd := e.Cmd
				if cmd == "." {
					cmd = "end of DATA"
				}
				say("   %-36s → %s", cmd, e)
			}
		}
		if r.Accepted() {
			lastQueued = r
		} else {
			say("   (swaks exit %d: no recipient accepted, nothing sent)", r.ExitCode)
			break
		}
	}
	if err := sb.WaitQueueEmpty(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
	}

	say("\n== relaycap's decision lines (one per message)")
	for _, d := range sb.Relaycap.Decisions(account) {
		say("   %s", d.Line)
	}
	n := 0
	for _, m := range sb.Sink.From(account) {
		n += len(m.Rcpts)
	}
	say("\n== the sink (standing for the Internet) received %d messages, %d recipient deliveries from %s",
		len(sb.Sink.From(account)), n, account)

	if lastQueued == nil {
		return 0
	}
	ms := sb.Sink.ByMessageID(lastQueued.MessageID)
	if len(ms) == 0 {
		return 0
	}
	say("\n== header of the last delivered message, as the recipient sees it")
	for _, hd := range ms[0].Headers()[:min(4, len(ms[0].Headers()))] {
		v := hd[1]
		if len(v) > 100 {
			v = v[:100] + "…"
		}
		say("   %s: %s", hd[0], v)
	}
	file := filepath.Join(sb.Dir, "demo-message.eml")
	if err := os.WriteFile(file, ms[0].Data, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		return 1
	}
	say("\n== relaycap id decode --keys-file %s --message <that message>", sb.KeysFile)
	out, err := exec.Command(h.Bin, "id", "decode", "--keys-file", sb.KeysFile, "--message", file,
		"--timezone", "America/New_York").CombinedOutput()
	say("%s", strings.TrimRight(string(out), "\n"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo: decode:", err)
		return 1
	}
	return 0
}
