//go:build e2e

package e2e_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/relaycap/relaycap/test/e2e"
)

// NoDaemonEnv=1 brings the sandbox up without relaycap (Postfix, Dovecot
// and the sink alone), for working on the sandbox while the daemon does not
// build. Every scenario that needs the daemon then fails.
const NoDaemonEnv = "RELAYCAP_E2E_NO_DAEMON"

var (
	sb      *e2e.Sandbox // shared by every scenario; see TestMain
	harness *e2e.Harness
)

// The accounts of all scenarios. Each scenario uses its own, so they do not
// interfere; the password of x@example.com is "pw-x".
var accounts = []e2e.Account{
	{Name: "auth@example.com", Limit: 1000},                          // 1: listeners and mechanisms
	{Name: "exact@example.com", Limit: 10},                           // 2: exact accounting
	{Name: "burst@example.com", Limit: 50},                           // 3: 20 parallel sessions
	{Name: "suspended@example.com", Limit: 100, Status: "suspended"}, // 4
	{Name: "stranger@example.com", Unprovisioned: true},              // 4: Dovecot user, no relaycap account
	{Name: "restart@example.com", Limit: 5},                          // 5: daemon stopped, restarted
	{Name: "reload@example.com", Limit: 2},                           // 6: SIGHUP raises the limit
	{Name: "stamp@example.com", Limit: 100},                          // 7: identification header
	{Name: "billing@example.com", Unprovisioned: true},               // 8: created, sold and suspended through the CLI
	{Name: "disk@example.com", Limit: 10},                            // 9: the state disk fills up
	{Name: "bulk@example.com", Limit: 200},                           // 10: 300 recipients, 200 relays left
	{Name: "guess@example.com", Limit: 10},                           // 10: password guessing
	{Name: "prom@example.com", Limit: 6},                             // 11: a real Prometheus scrapes relaycap
	{Name: "dryrun@example.com", Limit: 2, DryRun: true},             // 12: dry run past the limit
	{Name: "hourly@example.com", Limit: 100, HourlyLimit: 3},         // 14: the hourly burst brake
}

func init() {
	for i := range accounts {
		local, _, _ := strings.Cut(accounts[i].Name, "@")
		accounts[i].Password = "pw-" + local
	}
}

// stateTmpfsMB sizes the tmpfs under relaycap's state_dir; the sandbox's
// relaycap.yaml keeps store.min_free_mb (64) of it free.
const stateTmpfsMB = 192

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(run(m))
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s e2e: %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}

// run brings ONE sandbox up for all scenarios and tears it down however
// the run ends: normally, on a failed start, on SIGINT/SIGTERM (e2e.Up
// handles those), or shortly before go test's -timeout would kill the
// process without running any deferred function.
func run(m *testing.M) int {
	withDaemon := os.Getenv(NoDaemonEnv) != "1"
	if !withDaemon {
		logf("%s=1: sandbox WITHOUT relaycap", NoDaemonEnv)
	}
	h, err := e2e.Up(context.Background(), e2e.Options{Accounts: accounts, KeepData: true, StateTmpfsMB: stateTmpfsMB, Logf: logf}, withDaemon)
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL:", err)
		return 1
	}
	defer h.Close("end of run")
	if f := flag.Lookup("test.timeout"); f != nil {
		if d, err := time.ParseDuration(f.Value.String()); err == nil && d > time.Minute {
			t := time.AfterFunc(d-30*time.Second, func() { h.Close("go test -timeout is near") })
			defer t.Stop()
		}
	}
	sb, harness = h.SB, h
	code := m.Run()
	pf, rc := sb.Warnings()
	logf("end of run: %d warning lines in Postfix's maillog, %d WARN/ERROR lines from relaycap", len(pf), len(rc))
	for _, l := range limitLines(pf, 20) {
		logf("  maillog: %s", l)
	}
	for _, l := range limitLines(rc, 20) {
		logf("  relaycap: %s", l)
	}
	return code
}

func limitLines(ls []string, n int) []string {
	if len(ls) > n {
		return append(ls[:n:n], fmt.Sprintf("… and %d more", len(ls)-n))
	}
	return ls
}
