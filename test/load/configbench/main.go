// Command configbench measures relaycap on large account files: for each
// size it generates an accounts file (and the same accounts inline in the
// config) under a temp dir, then prints how long `config check` takes and
// its peak RSS, how long `serve` takes to READY=1, how long each SIGHUP
// reload takes to READY=1 again while policy clients keep asking (the p99
// and the worst policy answer during reloads, how many took over 100 ms,
// the worst outside them, and answers other than DUNNO), and the daemon's RSS after the start and
// after every reload.
//
//	go run ./test/load/configbench -bin ./relaycap -sizes 10000,100000,1000000
package main

import (
	"bufio"
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	bin := flag.String("bin", "./relaycap", "the relaycap binary")
	sizes := flag.String("sizes", "10000,100000,1000000", "account counts, comma-separated")
	reloads := flag.Int("reloads", 10, "SIGHUP reloads under load per size")
	clients := flag.Int("c", 4, "policy connections asking during the reloads")
	inline := flag.Bool("inline", true, "also measure the accounts inline in the config")
	flag.Parse()
	abs, err := filepath.Abs(*bin)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%-9s %-6s %8s %9s %8s %10s %9s %9s %7s %10s %8s %10s %s\n",
		"accounts", "where", "check", "check_rss", "ready", "reload_max", "p99", "worst", ">100ms", "worst_idle", "refused", "rss_start", "rss after each reload (MB)")
	for _, f := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			log.Fatal(err)
		}
		wheres := []string{"file"}
		if *inline {
			wheres = append(wheres, "inline")
		}
		for _, where := range wheres {
			r, err := measure(abs, n, where, *reloads, *clients)
			if err != nil {
				log.Fatalf("%d accounts %s: %v", n, where, err)
			}
			fmt.Printf("%-9d %-6s %7.2fs %7dMB %7.2fs %9.2fs %7.1fms %7.1fms %7s %8.1fms %8d %8dMB %v\n",
				n, where, r.check.Seconds(), r.checkRSS>>20, r.ready.Seconds(), r.reloadMax.Seconds(),
				ms(r.p99), ms(r.worst), fmt.Sprintf("%d/%d", r.slow, r.during), ms(r.worstIdle), r.refused, r.rssStart>>20, mbs(r.rssReloads))
		}
	}
}

type result struct {
	check, ready, reloadMax, p99, worst time.Duration
	worstIdle                           time.Duration // outside the reloads, for comparison
	slow, during                        int           // answers over 100 ms during the reloads, of all then
	checkRSS, rssStart                  int64
	rssReloads                          []int64
	refused                             int64
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func mbs(v []int64) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.FormatInt(x>>20, 10)
	}
	return strings.Join(s, " ")
}

// activeName is the name of account i; every tenth is in the long form and
// suspended, the others active with a limit far above what the run asks.
func activeName(i int) string { return fmt.Sprintf("user%07d.x@example.com", i) }

func writeAccounts(path string, n int, indent string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	for i := range n {
		if i%10 == 0 {
			fmt.Fprintf(w, "%s%q: {daily_limit: %d, status: suspended}\n", indent, activeName(i), 100+i%1000)
		} else {
			fmt.Fprintf(w, "%s%s: %d\n", indent, activeName(i), 1000+i%1000)
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return f.Close()
}

func measure(bin string, n int, where string, reloads, clients int) (*result, error) {
	dir, err := os.MkdirTemp("", "configbench")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	if out, err := exec.Command(bin, "id", "keygen", "--keys-file", filepath.Join(dir, "id.keys")).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("keygen: %v: %s", err, out)
	}
	cfg := filepath.Join(dir, "relaycap.yaml")
	head := fmt.Sprintf("state_dir: %[1]s/state\nmilter: {listen: \"unix:%[1]s/m.sock\"}\npolicy: {listen: \"unix:%[1]s/p.sock\"}\n"+
		"id_header: {keys_file: %[1]s/id.keys}\nstore: {sync_writes: false}\nlog: {level: warn}\n", dir)
	if where == "file" {
		head += "quota:\n  accounts_file: accounts.yaml\n"
		if err := writeAccounts(filepath.Join(dir, "accounts.yaml"), n, ""); err != nil {
			return nil, err
		}
		if err := os.WriteFile(cfg, []byte(head), 0o644); err != nil {
			return nil, err
		}
	} else {
		if err := os.WriteFile(filepath.Join(dir, "head.yaml"), []byte(head+"quota:\n  accounts:\n"), 0o644); err != nil {
			return nil, err
		}
		if err := writeAccounts(filepath.Join(dir, "body.yaml"), n, "    "); err != nil {
			return nil, err
		}
		if err := concat(cfg, filepath.Join(dir, "head.yaml"), filepath.Join(dir, "body.yaml")); err != nil {
			return nil, err
		}
	}
	r := &result{}

	check := exec.Command(bin, "config", "check", "--config", cfg)
	start := time.Now()
	if out, err := check.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("config check: %v: %s", err, out)
	}
	r.check = time.Since(start)
	r.checkRSS = check.ProcessState.SysUsage().(*syscall.Rusage).Maxrss << 10

	notes, err := listenNotify(filepath.Join(dir, "notify.sock"))
	if err != nil {
		return nil, err
	}
	defer notes.close()
	serve := exec.Command(bin, "serve", "--config", cfg)
	serve.Env = append(os.Environ(), "NOTIFY_SOCKET="+notes.path)
	serve.Stderr = os.Stderr
	start = time.Now()
	if err := serve.Start(); err != nil {
		return nil, err
	}
	defer func() {
		serve.Process.Signal(syscall.SIGTERM)
		serve.Wait()
	}()
	if err := notes.wait("READY=1", 60*time.Second); err != nil {
		return nil, fmt.Errorf("serve: %w", err)
	}
	r.ready = time.Since(start)
	time.Sleep(time.Second)
	r.rssStart = rss(serve.Process.Pid)

	// Policy clients ask for active accounts all along; each answer's
	// latency is kept with the time it was asked.
	var stop atomic.Bool
	var mu sync.Mutex
	var samples []sample
	var refused atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, clients)
	for c := range clients {
		wg.Go(func() {
			conn, err := net.Dial("unix", filepath.Join(dir, "p.sock"))
			if err != nil {
				errc <- err
				return
			}
			defer conn.Close()
			rd := bufio.NewReader(conn)
			rng := rand.New(rand.NewPCG(uint64(c), 1))
			var mine []sample
			for !stop.Load() {
				i := rng.IntN(n)
				if i%10 == 0 {
					i++
				}
				t0 := time.Now()
				fmt.Fprintf(conn, "request=smtpd_access_policy\nprotocol_state=RCPT\nsasl_username=%s\n\n", activeName(i%n))
				line, err := rd.ReadString('\n')
				if err == nil {
					_, err = rd.ReadString('\n')
				}
				if err != nil {
					errc <- err
					return
				}
				mine = append(mine, sample{t0, time.Since(t0)})
				if strings.TrimSpace(line) != "action=DUNNO" {
					refused.Add(1)
				}
			}
			mu.Lock()
			samples = append(samples, mine...)
			mu.Unlock()
		})
	}
	var windows [][2]time.Time
	time.Sleep(500 * time.Millisecond)
	for range reloads {
		t0 := time.Now()
		if err := serve.Process.Signal(syscall.SIGHUP); err != nil {
			return nil, err
		}
		if err := notes.wait("RELOADING=1", 60*time.Second); err != nil {
			return nil, fmt.Errorf("reload: %w", err)
		}
		if err := notes.wait("READY=1", 60*time.Second); err != nil {
			return nil, fmt.Errorf("reload: %w", err)
		}
		t1 := time.Now()
		windows = append(windows, [2]time.Time{t0, t1})
		r.reloadMax = max(r.reloadMax, t1.Sub(t0))
		time.Sleep(500 * time.Millisecond)
		r.rssReloads = append(r.rssReloads, rss(serve.Process.Pid))
	}
	fmt.Fprintf(os.Stderr, "after the reloads: %s\n", rssParts(serve.Process.Pid))
	stop.Store(true)
	wg.Wait()
	select {
	case err := <-errc:
		return nil, fmt.Errorf("policy client: %w", err)
	default:
	}
	var during []time.Duration
	for _, s := range samples {
		in := false
		for _, w := range windows {
			if !s.at.Before(w[0]) && s.at.Before(w[1]) {
				in = true
				break
			}
		}
		if in {
			during = append(during, s.took)
		} else {
			r.worstIdle = max(r.worstIdle, s.took)
		}
	}
	slices.Sort(during)
	r.during = len(during)
	for _, d := range during {
		if d > 100*time.Millisecond {
			r.slow++
		}
	}
	if len(during) > 0 {
		r.p99 = during[len(during)*99/100]
		r.worst = during[len(during)-1]
	}
	r.refused = refused.Load()
	fmt.Fprintf(os.Stderr, "%d accounts %s: %d policy answers, %d during reloads\n", n, where, len(samples), len(during))
	return r, nil
}

type sample struct {
	at   time.Time
	took time.Duration
}

func concat(dst string, srcs ...string) error {
	var all []byte
	for _, s := range srcs {
		b, err := os.ReadFile(s)
		if err != nil {
			return err
		}
		all = append(all, b...)
	}
	return os.WriteFile(dst, all, 0o644)
}

// rss is the resident set of process pid, in bytes.
func rss(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return -1
}

// rssParts is the resident set split as the kernel counts it: anonymous
// (the Go heap), file-backed (Badger's memory-mapped tables), shared.
func rssParts(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return err.Error()
	}
	var parts []string
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "RssAnon:") || strings.HasPrefix(line, "RssFile:") || strings.HasPrefix(line, "RssShmem:") {
			parts = append(parts, strings.Join(strings.Fields(line), " "))
		}
	}
	return strings.Join(parts, ", ")
}

// notifier is systemd's side of sd_notify.
type notifier struct {
	path string
	conn *net.UnixConn
	msgs chan string
}

func listenNotify(path string) (*notifier, error) {
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return nil, err
	}
	n := &notifier{path: path, conn: c, msgs: make(chan string, 64)}
	go func() {
		buf := make([]byte, 4096)
		for {
			k, err := c.Read(buf)
			if err != nil {
				close(n.msgs)
				return
			}
			n.msgs <- string(buf[:k])
		}
	}()
	return n, nil
}

func (n *notifier) close() { n.conn.Close() }

// wait waits for a message that starts with want.
func (n *notifier) wait(want string, timeout time.Duration) error {
	deadline := time.After(timeout)
	for {
		select {
		case m, ok := <-n.msgs:
			if !ok {
				return fmt.Errorf("notify socket closed before %s", want)
			}
			if strings.HasPrefix(m, want) {
				return nil
			}
		case <-deadline:
			return fmt.Errorf("no %s within %v", want, timeout)
		}
	}
}
