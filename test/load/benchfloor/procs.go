package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// proc is a server process this tool started; stop ends it by its PID.
type proc struct {
	name   string
	cmd    *exec.Cmd
	done   chan struct{}
	policy string // unix socket path
	milter string
	log    string
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) stop() {
	if p == nil || p.cmd.Process == nil {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *proc) start(bin string, args []string, env []string) error {
	logf, err := os.Create(p.log)
	if err != nil {
		return err
	}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	p.cmd.Env = append(os.Environ(), env...)
	// If this tool dies, its servers go too.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := p.cmd.Start(); err != nil {
		logf.Close()
		return err
	}
	p.done = make(chan struct{})
	go func() { p.cmd.Wait(); logf.Close(); close(p.done) }()
	return nil
}

// waitSockets waits until every socket of p accepts a connection.
func (p *proc) waitSockets(d time.Duration) error {
	deadline := time.Now().Add(d)
	for _, s := range []string{p.policy, p.milter} {
		for {
			c, err := net.Dial("unix", s)
			if err == nil {
				c.Close()
				break
			}
			select {
			case <-p.done:
				return fmt.Errorf("%s exited:\n%s", p.name, tail(p.log))
			default:
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s: %s not ready: %w\n%s", p.name, s, err, tail(p.log))
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return nil
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	return strings.Join(lines, "\n")
}

// startFloor starts the do-nothing policy server and milter in dir.
func startFloor(bin, dir string) (*proc, error) {
	p := &proc{name: "floor", policy: filepath.Join(dir, "floor-policy.sock"), milter: filepath.Join(dir, "floor-milter.sock"),
		log: filepath.Join(dir, "floor.log")}
	if err := p.start(bin, []string{"-policy", "unix:" + p.policy, "-milter", "unix:" + p.milter}, nil); err != nil {
		return nil, err
	}
	if err := p.waitSockets(30 * time.Second); err != nil {
		p.stop()
		return nil, err
	}
	return p, nil
}

// badgerStore is the store section of a run on Badger.
const badgerStore = "{sync_writes: true}"

// relaycapConfig is the daemon's config for a run: production defaults
// (store.sync_writes true, log level info) on sockets in dir, with store
// (a YAML flow mapping) as its store section.
func relaycapConfig(dir string, defaultLimit int64, store string) string {
	return fmt.Sprintf(`state_dir: %[1]s/state
milter: {listen: "unix:%[1]s/milter.sock"}
policy: {listen: "unix:%[1]s/policy.sock"}
id_header: {keys_file: %[1]s/id.keys}
quota: {default_daily_limit: %[2]d}
store: %[3]s
log: {level: info}
`, dir, defaultLimit, store)
}

func writeConfig(dir, cfg string) error {
	return os.WriteFile(filepath.Join(dir, "relaycap.yaml"), []byte(cfg), 0o640)
}

// startRelaycap starts `BIN serve` (or profserve with a CPU profile) on the
// config in dir and returns how long it took to send READY=1 (sd_notify).
func startRelaycap(ctx context.Context, b *bins, dir, profile string, env []string) (*proc, time.Duration, error) {
	notifyPath := filepath.Join(dir, "notify.sock")
	os.Remove(notifyPath)
	ln, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notifyPath, Net: "unixgram"})
	if err != nil {
		return nil, 0, err
	}
	defer ln.Close()
	p := &proc{name: "relaycap", policy: filepath.Join(dir, "policy.sock"), milter: filepath.Join(dir, "milter.sock"),
		log: filepath.Join(dir, "relaycap.log")}
	bin, args := b.relaycap, []string{"serve", "--config", filepath.Join(dir, "relaycap.yaml")}
	if profile != "" {
		bin, args = b.profserve, []string{"-config", filepath.Join(dir, "relaycap.yaml"),
			"-cpuprofile", profile, "-memprofile", strings.TrimSuffix(profile, ".pprof") + ".heap"}
	}
	t0 := time.Now()
	if err := p.start(bin, args, append([]string{"NOTIFY_SOCKET=" + notifyPath}, env...)); err != nil {
		return nil, 0, err
	}
	ready := make(chan error, 1)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, _, err := ln.ReadFromUnix(buf)
			if err != nil {
				ready <- err
				return
			}
			if strings.Contains(string(buf[:n]), "READY=1") {
				ready <- nil
				return
			}
		}
	}()
	var readyAfter time.Duration
	select {
	case err = <-ready:
		readyAfter = time.Since(t0)
	case <-p.done:
		err = errors.New("exited before READY=1")
	case <-time.After(60 * time.Second):
		err = errors.New("no READY=1 within 60 s")
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err == nil {
		err = p.waitSockets(10 * time.Second)
	}
	if err != nil {
		p.stop()
		return nil, 0, fmt.Errorf("relaycap: %w\n%s", err, tail(p.log))
	}
	return p, readyAfter, nil
}
