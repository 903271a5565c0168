//go:build e2e

package e2e_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/relaycap/relaycap/metrics"
	"github.com/relaycap/relaycap/test/e2e"
)

// TestPrometheusScrape (scenario 11): a real Prometheus server (Debian's
// package, on loopback, temp config and storage) scrapes relaycap every
// second while an account sends through Postfix until its quota stops it.
// Prometheus' query API then reports as many new committed relays as the
// sink received, and the policy refusals; every expression of the shipped
// dashboard and rules runs on it without error. /healthz turns 503 while
// the state disk is below store.min_free_mb and 200 once space is back,
// and 503 after a SIGHUP on an emptied keys file, 200 after one on the
// restored file.
func TestPrometheusScrape(t *testing.T) {
	sc := begin(t, true)
	const account = "prom@example.com" // limit 6
	l := sb.Listeners[0]
	root, err := e2e.ModuleRoot()
	if err != nil {
		sc.fatalf(t, "%v", err)
	}
	monitoring := filepath.Join(root, "packaging", "monitoring")
	prom, err := e2e.StartPrometheus(sc.ctx, t.TempDir(), sb.MetricsAddr, filepath.Join(monitoring, "relaycap-rules.yml"))
	if err != nil {
		sc.fatalf(t, "%v", err)
	}
	t.Cleanup(prom.Stop)
	direct, err := metrics.NewClient("inet:" + sb.MetricsAddr)
	if err != nil {
		sc.fatalf(t, "%v", err)
	}

	const committed = "relaycap_relays_committed_total"
	const refused = `relaycap_recipients_refused_total{service="policy",reason="over_quota"}`
	before := map[string]float64{}
	for _, expr := range []string{committed, refused} {
		before[expr] = sc.caughtUp(t, prom, direct, expr)
	}

	for i, n := range []int{3, 2, 3} { // 6 relays: 3, 2, then 1 of 3
		r := sc.send(t, as(account, l, rcpts("prom", n)))
		if !r.Accepted() {
			sc.fatalf(t, "message %d not queued: %s", i+1, r.Summary())
		}
	}
	sc.settle(t)
	_, sunk := delivered(account)
	if sunk != 6 {
		sc.fatalf(t, "the sink holds %d deliveries from %s, want 6", sunk, account)
	}
	if got := sc.caughtUp(t, prom, direct, committed) - before[committed]; got != float64(sunk) {
		sc.errorf(t, "Prometheus reports %v new committed relays, the sink received %d", got, sunk)
	}
	if got := sc.caughtUp(t, prom, direct, refused) - before[refused]; got != 2 {
		sc.errorf(t, "Prometheus reports %v new policy over_quota refusals, want 2", got)
	}
	if v, err := prom.Scalar(sc.ctx, `up{job="relaycap"}`); err != nil || v != 1 {
		sc.errorf(t, "up{job=\"relaycap\"} = %v, %v", v, err)
	}
	sc.queryShipped(t, prom, monitoring)
	sc.healthzFollowsTheDisk(t, direct)
	sc.healthzFollowsTheKeysFile(t, direct)
}

// caughtUp waits until Prometheus' latest sample of expr equals what
// relaycap serves now (no mail is moving it meanwhile) and returns it.
func (sc *scenario) caughtUp(t *testing.T, prom *e2e.Prometheus, direct *metrics.Client, expr string) float64 {
	t.Helper()
	name, labels := splitSelector(expr)
	var last string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		fams, err := direct.Scrape(sc.ctx)
		if err != nil {
			sc.fatalf(t, "scrape relaycap: %v", err)
		}
		want, ok := fams.Value(name, labels...)
		if !ok {
			sc.fatalf(t, "relaycap serves no %s", expr)
		}
		got, err := prom.Scalar(sc.ctx, expr)
		if err == nil && got == want {
			return got
		}
		last = fmt.Sprintf("Prometheus %v (%v), relaycap %v", got, err, want)
	}
	sc.fatalf(t, "Prometheus never caught up on %s: %s", expr, last)
	return 0
}

// splitSelector turns `name{a="b",c="d"}` into name and a, b, c, d.
func splitSelector(expr string) (string, []string) {
	name, rest, ok := strings.Cut(expr, "{")
	if !ok {
		return name, nil
	}
	var labels []string
	for _, m := range strings.Split(strings.TrimSuffix(rest, "}"), ",") {
		k, v, _ := strings.Cut(m, "=")
		labels = append(labels, k, strings.Trim(v, `"`))
	}
	return name, labels
}

// queryShipped runs every expression of the dashboard and the rules on the
// real server: each must parse and evaluate; the rules must be loaded.
func (sc *scenario) queryShipped(t *testing.T, prom *e2e.Prometheus, dir string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "relaycap-dashboard.json"))
	if err != nil {
		sc.fatalf(t, "%v", err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		sc.fatalf(t, "%v", err)
	}
	grafana := strings.NewReplacer("$__rate_interval", "1m", "$instance", ".*")
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			s, err := prom.Query(sc.ctx, grafana.Replace(tg.Expr))
			if err != nil {
				sc.errorf(t, "panel %q: %v", p.Title, err)
			} else if len(s) == 0 {
				sc.errorf(t, "panel %q: %q returns nothing", p.Title, tg.Expr)
			}
		}
	}
	var rules struct {
		Data struct {
			Groups []struct {
				Rules []struct {
					Name, Health, LastError string
				} `json:"rules"`
			} `json:"groups"`
		} `json:"data"`
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		resp, err := http.Get("http://" + prom.Addr + "/api/v1/rules")
		if err != nil {
			sc.fatalf(t, "%v", err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err := json.Unmarshal(body, &rules); err != nil {
			sc.fatalf(t, "/api/v1/rules: %v", err)
		}
		n, ok := 0, 0
		for _, g := range rules.Data.Groups {
			for _, r := range g.Rules {
				n++
				if r.Health == "ok" {
					ok++
				} else if r.Health == "err" {
					sc.errorf(t, "rule %s: %s", r.Name, r.LastError)
				}
			}
		}
		if n == 6 && ok == 6 {
			return
		}
		if time.Now().After(deadline) {
			sc.fatalf(t, "rules loaded %d, evaluated ok %d, want 6: %s", n, ok, body)
		}
	}
}

// healthzFollowsTheDisk fills the state tmpfs below store.min_free_mb:
// /healthz answers 503 naming the cause, and 200 again once space is back.
func (sc *scenario) healthzFollowsTheDisk(t *testing.T, direct *metrics.Client) {
	t.Helper()
	// The store may cache its free-space answer briefly: wait for the
	// status rather than expect it on the first request.
	health := func(want int) (int, string) {
		var code int
		var body []byte
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			var err error
			code, body, err = direct.Raw(sc.ctx, "/healthz")
			if err != nil {
				sc.fatalf(t, "/healthz: %v", err)
			}
			if code == want {
				break
			}
		}
		return code, string(body)
	}
	if code, body := health(http.StatusOK); code != http.StatusOK {
		sc.fatalf(t, "/healthz before the fill: %d %q", code, body)
	}
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
	code, body := health(http.StatusServiceUnavailable)
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "low on disk space") {
		sc.errorf(t, "/healthz with the state disk full: %d %q, want 503 low on disk space", code, body)
	}
	if err := undo(); err != nil {
		sc.fatalf(t, "%v", err)
	}
	filled = false
	if code, body := health(http.StatusOK); code != http.StatusOK {
		sc.errorf(t, "/healthz with space back: %d %q, want 200", code, body)
	}
}

// healthzFollowsTheKeysFile empties the keys file under the running key
// and sends SIGHUP: the reload is refused and /healthz answers 503 naming
// the file. The restored file (the same key, for the scenarios after this
// one) and another SIGHUP make it 200 again.
func (sc *scenario) healthzFollowsTheKeysFile(t *testing.T, direct *metrics.Client) {
	t.Helper()
	saved, err := os.ReadFile(sb.KeysFile)
	if err != nil {
		sc.fatalf(t, "%v", err)
	}
	restored := false
	defer func() {
		if !restored {
			os.WriteFile(sb.KeysFile, saved, 0o640)
			sb.Relaycap.Reload()
		}
	}()
	if err := os.Truncate(sb.KeysFile, 0); err != nil {
		sc.fatalf(t, "%v", err)
	}
	sc.sighup(t, reloadFailed)
	code, body, err := direct.Raw(sc.ctx, "/healthz")
	if err != nil {
		sc.fatalf(t, "/healthz: %v", err)
	}
	if reason := "keys file " + sb.KeysFile + " holds no key"; code != http.StatusServiceUnavailable || !strings.Contains(string(body), reason) {
		sc.errorf(t, "/healthz after a reload on the emptied keys file: %d %q, want 503 %q", code, body, reason)
	}
	if err := os.WriteFile(sb.KeysFile, saved, 0o640); err != nil {
		sc.fatalf(t, "%v", err)
	}
	restored = true
	sc.sighup(t, reloadLine)
	if code, body, err := direct.Raw(sc.ctx, "/healthz"); err != nil || code != http.StatusOK {
		sc.errorf(t, "/healthz after a reload on the restored keys file: %d %q %v, want 200", code, body, err)
	}
}

// sighup sends SIGHUP and waits for the log line want (reloadLine or
// reloadFailed) after it.
func (sc *scenario) sighup(t *testing.T, want *regexp.Regexp) {
	t.Helper()
	off := sb.Relaycap.LogSize()
	if err := sb.Relaycap.Reload(); err != nil {
		sc.fatalf(t, "%v", err)
	}
	for deadline := time.Now().Add(10 * time.Second); !want.MatchString(sb.Relaycap.LogSince(off)); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			sc.fatalf(t, "no %q in the log within 10s of SIGHUP; log since:\n%s", want, sb.Relaycap.LogSince(off))
		}
	}
}
