package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// The files packaging ships for Prometheus and Grafana.
var (
	rulesFile     = filepath.Join("..", "packaging", "monitoring", "relaycap-rules.yml")
	dashboardFile = filepath.Join("..", "packaging", "monitoring", "relaycap-dashboard.json")
)

// promtool is Debian's, from the prometheus package (.ci/run installs it).
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool not found (apt-get install prometheus; make monitoring-deps): %v", err)
	}
	return p
}

// TestPromtoolCheckMetrics lints a real scrape, after traffic, with
// promtool: names, units, _total suffixes, help texts.
func TestPromtoolCheckMetrics(t *testing.T) {
	bin := promtool(t)
	td := startDaemon(t, metricsOn+"quota: {accounts: {alice: 5}}\n")
	s := td.milterSession(t)
	s.mail("alice")
	s.rcpts(2)
	s.data(plainHeaders)
	td.policyConn(t).ask(rcptRequest("alice"))
	_, body, err := td.metricsClient(t).Raw(context.Background(), "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}

func TestPromtoolCheckRules(t *testing.T) {
	out, err := exec.Command(promtool(t), "check", "rules", rulesFile).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "SUCCESS: 6 rules found") {
		t.Fatalf("promtool check rules %s: %v\n%s", rulesFile, err, out)
	}
}

// TestPromtoolRuleUnitTests feeds the rules series and checks which alerts
// fire (testdata/rules_test.yml).
func TestPromtoolRuleUnitTests(t *testing.T) {
	out, err := exec.Command(promtool(t), "test", "rules", filepath.Join("testdata", "rules_test.yml")).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool test rules: %v\n%s", err, out)
	}
}

// TestMonitoringUsesLiveMetrics: every metric name in the shipped
// dashboard's and rules' expressions is served by a running relaycap.
func TestMonitoringUsesLiveMetrics(t *testing.T) {
	td := startDaemon(t, metricsOn)
	live := td.scrape(t)
	exprs := append(dashboardExprs(t), ruleExprs(t)...)
	if len(exprs) < 15 {
		t.Fatalf("found only %d expressions", len(exprs))
	}
	seen := map[string]bool{}
	for _, e := range exprs {
		for _, name := range metricNames(e) {
			seen[name] = true
			base := name
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				if b, ok := strings.CutSuffix(name, suffix); ok && live[b] != nil {
					base = b
				}
			}
			if live[base] == nil && name != "up" {
				t.Errorf("%q uses %s, which relaycap does not serve", e, name)
			}
		}
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	t.Logf("metrics used: %s", strings.Join(names, " "))
}

func dashboardExprs(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
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
		t.Fatal(err)
	}
	var out []string
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			out = append(out, tg.Expr)
		}
	}
	return out
}

func ruleExprs(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Rules []struct {
				Expr string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(data, &rules); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			out = append(out, r.Expr)
		}
	}
	return out
}

var (
	// Label matchers, strings and ranges hold no metric names.
	quoted     = regexp.MustCompile(`"[^"]*"|\{[^}]*\}|\[[^\]]*\]`)
	identifier = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
)

// metricNames picks the metric names out of a PromQL expression: the
// identifiers of a known prefix (functions, keywords and labels have none).
func metricNames(expr string) []string {
	var out []string
	for _, id := range identifier.FindAllString(quoted.ReplaceAllString(expr, " "), -1) {
		if id == "up" || strings.HasPrefix(id, "relaycap_") || strings.HasPrefix(id, "process_") || strings.HasPrefix(id, "go_") {
			out = append(out, id)
		}
	}
	return out
}
