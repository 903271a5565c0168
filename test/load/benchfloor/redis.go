package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/relaycap/relaycap/admin"
)

// redisServer is a redis-server this tool started; stop ends it by its PID.
type redisServer struct {
	*proc
	sock string
}

// startRedis runs a redis-server of this run alone: persistence off, no
// TCP port, on a unix socket in dir.
func startRedis(dir string) (*redisServer, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("the policy-redis scenario needs redis-server (make redis-deps): %w", err)
	}
	r := &redisServer{proc: &proc{name: "redis-server", log: filepath.Join(dir, "redis.log")}, sock: filepath.Join(dir, "redis.sock")}
	args := []string{"--port", "0", "--unixsocket", r.sock, "--unixsocketperm", "700",
		"--dir", dir, "--save", "", "--appendonly", "no", "--daemonize", "no", "--logfile", ""}
	if err := r.start(bin, args, nil); err != nil {
		return nil, fmt.Errorf("redis-server: %w", err)
	}
	if err := r.waitPong(20 * time.Second); err != nil {
		r.stop()
		return nil, err
	}
	return r, nil
}

// waitPong waits until the server answers PING.
func (r *redisServer) waitPong(d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		err := ping(r.sock)
		if err == nil {
			return nil
		}
		select {
		case <-r.done:
			return fmt.Errorf("redis-server exited:\n%s", tail(r.log))
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("redis-server on %s does not answer PING: %w\n%s", r.sock, err, tail(r.log))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func ping(sock string) error {
	c, err := net.DialTimeout("unix", sock, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "+PONG\r\n" {
		return fmt.Errorf("PING answered %q", line)
	}
	return nil
}

// policyRedis is the policy service of a host of several: counts and
// store-managed accounts in a local redis-server (store.backend: redis),
// the accounts created through the admin API as a billing system would.
// Only 8 connections have a goal (issue 12: 0.5x the floor); 1 connection,
// where every answer waits for one Redis round trip, is reported.
func policyRedis(ctx context.Context, b *bins, floor *proc, dir string, o options) ([]goal, error) {
	redis, err := startRedis(dir)
	if err != nil {
		return nil, err
	}
	defer redis.stop()
	// default_daily_limit 0: a login Redis has no record of is refused.
	cfg := relaycapConfig(dir, 0, fmt.Sprintf(`{backend: redis, sync_writes: true, redis: {addrs: ["unix:%s"]}}`, redis.sock))
	if err := writeConfig(dir, cfg); err != nil {
		return nil, err
	}
	rc, _, err := startRelaycap(ctx, b, dir, profilePath(o, "policy-redis"), o.env)
	if err != nil {
		return nil, err
	}
	defer rc.stop()
	logins := names("redis", 1000)
	if err := createAccounts(ctx, "unix:"+filepath.Join(dir, "state", "admin.sock"), logins, 1_000_000_000); err != nil {
		return nil, err
	}
	return comparePolicy(ctx, "policy on Redis, 1000 store-managed logins", rc, floor, logins, o,
		[]connGoal{{conns: 1}, {conns: 8, min: 0.5}})
}

// createAccounts puts each login as a store-managed account with limit
// relays a day, over the daemon's admin API, 8 requests at a time.
func createAccounts(ctx context.Context, adminAddr string, logins []string, limit int64) error {
	c, err := admin.NewClient(adminAddr, "")
	if err != nil {
		return err
	}
	var next atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(logins) {
					return
				}
				if _, err := c.PutAccount(ctx, logins[i], admin.AccountRequest{DailyLimit: &limit}); err != nil {
					once.Do(func() { firstErr = fmt.Errorf("admin API: put %s: %w", logins[i], err) })
					return
				}
			}
		})
	}
	wg.Wait()
	return firstErr
}
