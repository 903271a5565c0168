// Command benchfloor measures relaycap against the floor, a do-nothing
// policy server and milter (test/load/floor), on this machine, in one run
// that alternates the two servers phase by phase (make bench-floor). It
// prints every ratio with its two rates and the memory and start-up
// figures, and exits 1 when one misses its goal (issue 12). Scenarios
// (-only):
//
//   - policy-default, policy-store: the policy service >= 0.9x the floor
//     on 1 and on 8 persistent connections, logins from 1000
//     default_daily_limit accounts, and from 1000 store-managed accounts
//     (Badger);
//   - policy-redis: the policy service with store.backend redis, on a
//     redis-server this tool starts (unix socket, persistence off) and
//     1000 store-managed accounts created through the admin API, >= 0.5x
//     the floor on 8 connections; 1 connection, where every answer waits
//     for a Redis round trip, is reported without a goal;
//   - big: RSS <= 64 MB (10^6 bytes) with 1,000,000 store-managed accounts, 100,000 of
//     them active today (each sends a message through the milter), and
//     READY=1 within 1 s on that database.
//
// Only ratios taken in one run mean anything on a shared machine.
package main

import (
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/relaycap/relaycap/idheader"
	"github.com/relaycap/relaycap/test/load/drive"
)

type bins struct{ relaycap, floor, profserve string }

type options struct {
	phase            time.Duration
	rounds           int
	scenarios        map[string]bool
	accounts, active int
	profileDir       string
	env              []string // for the daemon
}

// goal is one line of the report.
type goal struct {
	name   string
	got    float64
	detail string
	min    float64 // got must be >= min, or
	max    float64 // got must be <= max (when max > 0)
	info   bool    // reported, no goal
	unit   string
}

func (g goal) met() bool {
	if g.info {
		return true
	}
	if g.max > 0 {
		return g.got <= g.max
	}
	return g.got >= g.min
}

func main() {
	var o options
	only := flag.String("only", "policy-default,policy-store,policy-redis,big", "scenarios to run, comma-separated")
	flag.DurationVar(&o.phase, "phase", 2*time.Second, "length of one measured phase")
	flag.IntVar(&o.rounds, "rounds", 3, "alternations of relaycap and floor per connection count")
	flag.IntVar(&o.accounts, "accounts", 1000000, "store-managed accounts of the big scenario")
	flag.IntVar(&o.active, "active", 100000, "of which active today (each sends one message)")
	flag.StringVar(&o.profileDir, "profile", "", "run relaycap under the profiler, writing DIR/<scenario>.pprof (CPU) and .heap (at the end)")
	flag.Func("env", "NAME=VALUE for relaycap's environment (repeatable), e.g. GOMEMLIMIT=40MiB", func(v string) error {
		if !strings.Contains(v, "=") {
			return fmt.Errorf("want NAME=VALUE, got %q", v)
		}
		o.env = append(o.env, v)
		return nil
	})
	flag.Parse()
	o.scenarios = map[string]bool{}
	for _, s := range strings.Split(*only, ",") {
		o.scenarios[strings.TrimSpace(s)] = true
	}
	code, err := run(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchfloor:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func run(o options) (int, error) {
	ctx := context.Background()
	top, err := os.MkdirTemp("", "benchfloor-")
	if err != nil {
		return 1, err
	}
	defer os.RemoveAll(top)
	b, err := build(top, o.profileDir != "")
	if err != nil {
		return 1, err
	}
	floor, err := startFloor(b.floor, top)
	if err != nil {
		return 1, err
	}
	defer floor.stop()
	fmt.Printf("bench-floor: phases of %v, %d rounds alternating relaycap and the floor; %s\n", o.phase, o.rounds, machine())
	var goals []goal
	for _, sc := range []struct {
		name string
		fn   func(context.Context, *bins, *proc, string, options) ([]goal, error)
	}{
		{"policy-default", policyDefault},
		{"policy-store", policyStore},
		{"policy-redis", policyRedis},
		{"big", big},
	} {
		if !o.scenarios[sc.name] {
			continue
		}
		dir := filepath.Join(top, sc.name)
		if err := prepare(dir); err != nil {
			return 1, err
		}
		gs, err := sc.fn(ctx, b, floor, dir, o)
		if err != nil {
			return 1, fmt.Errorf("%s: %w", sc.name, err)
		}
		goals = append(goals, gs...)
	}
	fmt.Println("\ngoal                                               relaycap / floor             ratio   goal    ")
	code := 0
	for _, g := range goals {
		verdict := "ok"
		if !g.met() {
			verdict, code = "MISSED", 1
		}
		bound := fmt.Sprintf(">= %.2f", g.min)
		if g.max > 0 {
			bound = fmt.Sprintf("<= %.0f", g.max)
		}
		if g.info {
			bound, verdict = "-", "info"
		}
		fmt.Printf("%-50s %-28s %7.2f%s %-8s %s\n", g.name, g.detail, g.got, g.unit, bound, verdict)
	}
	return code, nil
}

func machine() string {
	out, _ := exec.Command("nproc").Output()
	load, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(load))
	if len(f) > 0 {
		return fmt.Sprintf("%s cores, load %s", strings.TrimSpace(string(out)), f[0])
	}
	return strings.TrimSpace(string(out)) + " cores"
}

// build compiles relaycap, the floor and (for profiles) profserve from the
// tree.
func build(dir string, profserve bool) (*bins, error) {
	b := &bins{relaycap: filepath.Join(dir, "relaycap"), floor: filepath.Join(dir, "floor"), profserve: filepath.Join(dir, "profserve")}
	targets := [][2]string{{b.relaycap, "./cmd/relaycap"}, {b.floor, "./test/load/floor"}}
	if profserve {
		targets = append(targets, [2]string{b.profserve, "./test/load/profserve"})
	}
	for _, t := range targets {
		if out, err := exec.Command("go", "build", "-o", t[0], t[1]).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("go build %s: %w\n%s", t[1], err, out)
		}
	}
	return b, nil
}

// prepare makes a scenario's folder with its identification key.
func prepare(dir string) error {
	if err := os.MkdirAll(filepath.Join(dir, "state"), 0o750); err != nil {
		return err
	}
	_, err := idheader.Keygen(filepath.Join(dir, "id.keys"), rand.Reader)
	return err
}

func names(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%07d@example.com", prefix, i)
	}
	return out
}

func profilePath(o options, scenario string) string {
	if o.profileDir == "" {
		return ""
	}
	return filepath.Join(o.profileDir, scenario+".pprof")
}

func policyDefault(ctx context.Context, b *bins, floor *proc, dir string, o options) ([]goal, error) {
	if err := writeConfig(dir, relaycapConfig(dir, 1_000_000_000, badgerStore)); err != nil {
		return nil, err
	}
	rc, _, err := startRelaycap(ctx, b, dir, profilePath(o, "policy-default"), o.env)
	if err != nil {
		return nil, err
	}
	defer rc.stop()
	return comparePolicy(ctx, "policy, 1000 default_daily_limit logins", rc, floor, names("dflt", 1000), o, badgerGoals)
}

func policyStore(ctx context.Context, b *bins, floor *proc, dir string, o options) ([]goal, error) {
	logins := names("store", 1000)
	if err := seed(filepath.Join(dir, "state"), logins, 1_000_000_000, 0, time.Now(), time.UTC); err != nil {
		return nil, err
	}
	// default_daily_limit 0: a login the store does not know is refused.
	if err := writeConfig(dir, relaycapConfig(dir, 0, badgerStore)); err != nil {
		return nil, err
	}
	rc, _, err := startRelaycap(ctx, b, dir, profilePath(o, "policy-store"), o.env)
	if err != nil {
		return nil, err
	}
	defer rc.stop()
	return comparePolicy(ctx, "policy, 1000 store-managed logins", rc, floor, logins, o, badgerGoals)
}

// connGoal is a connection count and the ratio relaycap must reach on it
// (0: reported, no goal).
type connGoal struct {
	conns int
	min   float64
}

var badgerGoals = []connGoal{{conns: 1, min: 0.9}, {conns: 8, min: 0.9}}

// comparePolicy alternates relaycap and the floor, o.rounds times for each
// connection count, and sums each one's requests and time.
func comparePolicy(ctx context.Context, name string, rc, floor *proc, logins []string, o options, cgs []connGoal) ([]goal, error) {
	var goals []goal
	for _, cg := range cgs {
		conns := cg.conns
		servers := []*proc{floor, rc}
		var total [2]drive.PolicyResult
		var cpu [2]time.Duration    // each server process's CPU time in its phases
		for _, p := range servers { // warm-up, unmeasured
			if _, err := policyPhase(ctx, p, conns, o.phase/4, logins); err != nil {
				return nil, err
			}
		}
		for r := range o.rounds {
			for k := range 2 {
				i := (k + r) % 2 // floor first in even rounds, relaycap first in odd ones
				before, err := drive.CPUTime(servers[i].pid())
				if err != nil {
					return nil, err
				}
				res, err := policyPhase(ctx, servers[i], conns, o.phase, logins)
				if err != nil {
					return nil, err
				}
				after, err := drive.CPUTime(servers[i].pid())
				if err != nil {
					return nil, err
				}
				cpu[i] += after - before
				total[i].Requests += res.Requests
				total[i].Elapsed += res.Elapsed
			}
		}
		fl, rcRate := total[0].Rate(), total[1].Rate()
		perReq := func(i int) float64 { return float64(cpu[i].Microseconds()) / float64(max(total[i].Requests, 1)) }
		fmt.Printf("%s, %d connection(s): relaycap %.0f/s, floor %.0f/s, ratio %.2f (server CPU per request: relaycap %.2f µs, floor %.2f µs)\n",
			name, conns, rcRate, fl, rcRate/fl, perReq(1), perReq(0))
		goals = append(goals, goal{
			name:   fmt.Sprintf("%s, %d conn", name, conns),
			got:    rcRate / fl,
			detail: fmt.Sprintf("%.0f/s / %.0f/s", rcRate, fl),
			min:    cg.min,
			info:   cg.min == 0,
		})
	}
	return goals, nil
}

func policyPhase(ctx context.Context, p *proc, conns int, d time.Duration, logins []string) (drive.PolicyResult, error) {
	res, err := drive.Policy(ctx, "unix", p.policy, conns, d, logins, "action=DUNNO")
	if err != nil {
		return res, fmt.Errorf("%s: %w", p.name, err)
	}
	if res.Unexpected > 0 {
		return res, fmt.Errorf("%s: %d unexpected replies, first %q", p.name, res.Unexpected, res.FirstUnexpected)
	}
	return res, nil
}

// big is the memory and start-up scenario: a database of o.accounts
// store-managed accounts, o.active of them with usage today, each of
// which then sends one message through the milter.
func big(ctx context.Context, b *bins, floor *proc, dir string, o options) ([]goal, error) {
	all := names("big", o.accounts)
	t0 := time.Now()
	loc, err := time.LoadLocation("America/New_York")
	if err != nil {
		return nil, err
	}
	if err := seed(filepath.Join(dir, "state"), all, 1000, o.active, time.Now(), loc); err != nil {
		return nil, err
	}
	fmt.Printf("big: seeded %d store-managed accounts, %d with usage today, in %v\n", o.accounts, o.active, time.Since(t0).Round(time.Millisecond))
	if err := writeConfig(dir, relaycapConfig(dir, 0, badgerStore)); err != nil {
		return nil, err
	}
	rc, ready, err := startRelaycap(ctx, b, dir, profilePath(o, "big"), o.env)
	if err != nil {
		return nil, err
	}
	defer rc.stop()
	idle, err := drive.RSSKiB(rc.pid())
	if err != nil {
		return nil, err
	}
	network, addr := "unix", rc.milter
	res := drive.Milter(drive.NewMilterClient(network, addr), all[:o.active], 1, 8)
	if res.Failed > 0 {
		return nil, fmt.Errorf("milter: %d of %d messages failed; first: %v", res.Failed, o.active, res.FirstErr)
	}
	after, err := drive.RSSKiB(rc.pid())
	if err != nil {
		return nil, err
	}
	if maps, err := drive.Mappings(rc.pid()); err == nil {
		fmt.Printf("big: resident memory by kind:%s\n", byKind(maps))
	}
	fmt.Printf("big: READY=1 after %v; RSS %.1f MiB idle, %.1f MiB after %d messages (%.0f msg/s over 8 milter connections)\n",
		ready.Round(time.Millisecond), float64(idle)/1024, float64(after)/1024, res.Accepted, res.Rate())
	return []goal{
		// The goal is 64 MB, read strictly: 10^6 bytes, some 61 MiB.
		{name: fmt.Sprintf("RSS, %d accounts, %d active today", o.accounts, o.active), got: float64(after) * 1024 / 1e6,
			detail: fmt.Sprintf("%.1f MiB = %.1f MB idle", float64(idle)/1024, float64(idle)*1024/1e6), max: 64, unit: " MB"},
		{name: "serve ready (READY=1) on that database", got: ready.Seconds(),
			detail: "", max: 1, unit: " s"},
	}, nil
}

// byKind sums mappings by kind: Badger's tables (*.sst), memtables (*.mem)
// and value log (*.vlog), anonymous memory (the Go heap, Badger's arenas),
// the binary.
func byKind(maps []drive.Mapping) string {
	sum := map[string]int64{}
	var kinds []string
	for _, m := range maps {
		k := filepath.Ext(m.Name)
		if k == "" || strings.Contains(m.Name, ".so") {
			k = filepath.Base(m.Name)
		}
		if _, ok := sum[k]; !ok {
			kinds = append(kinds, k)
		}
		sum[k] += m.RSSKiB
	}
	var b strings.Builder
	for _, k := range kinds {
		if sum[k] >= 512 {
			fmt.Fprintf(&b, " %s %.1f MiB;", k, float64(sum[k])/1024)
		}
	}
	return b.String()
}
