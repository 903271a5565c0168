//go:build e2e

package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
)

// Harness is one run's sandbox plus what it took to get there: the
// relaycap binary built from the tree and the teardown on signals. The
// tests' TestMain, cmd/demo and cmd/loadgen all start through Up.
type Harness struct {
	SB  *Sandbox
	Bin string // relaycap binary, "" without the daemon

	logf        func(string, ...any)
	interrupted atomic.Bool
	done        chan struct{}
	once        sync.Once
	mu          sync.Mutex // guards binDir and SB against a concurrent Close
	binDir      string
}

// Up checks the peers, builds relaycap (withDaemon and no opts.Relaycap),
// enables the identification header when the binary supports it, and
// brings the sandbox up. SIGINT/SIGTERM tear everything down and exit 130.
// On error everything started so far is already stopped.
func Up(ctx context.Context, opts Options, withDaemon bool) (*Harness, error) {
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	if err := CheckDeps(); err != nil {
		return nil, err
	}
	h := &Harness{logf: opts.Logf, done: make(chan struct{})}
	// A closed stdout (… | head) must not kill us before teardown: with
	// SIGPIPE notified, writes fail with EPIPE instead.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case s := <-sig:
			h.interrupted.Store(true)
			cancel()
			h.Close("signal " + s.String())
			os.Exit(130)
		case <-h.done:
			signal.Stop(sig)
			cancel()
		}
	}()

	if withDaemon {
		if opts.Relaycap == "" {
			dir, err := os.MkdirTemp("", "rce2e-bin-")
			if err != nil {
				h.Close("error")
				return nil, err
			}
			h.mu.Lock()
			h.binDir = dir
			h.mu.Unlock()
			bin, err := BuildRelaycap(ctx, dir)
			if err != nil {
				h.Close("error")
				return nil, fmt.Errorf("building relaycap: %w", err)
			}
			opts.Relaycap = bin
		}
		h.Bin = opts.Relaycap
		opts.IDHeader = true
		opts.Logf("relaycap binary %s", h.Bin)
	} else {
		opts.Relaycap = ""
	}

	sb, err := New(opts)
	if err != nil {
		h.Close("error")
		return nil, err
	}
	h.mu.Lock()
	h.SB = sb
	h.mu.Unlock()
	if err := sb.Start(ctx); err != nil {
		diag := sb.Diagnostics(40)
		h.Close("start failed")
		return nil, fmt.Errorf("%w\n%s", err, diag)
	}
	opts.Logf("sandbox up: %s; listeners %v; xclient %v; plain %v; sink :%d",
		sb.Dir, sb.Listeners, sb.XClient, sb.Plain, sb.Sink.Port())
	return h, nil
}

// Interrupted tells whether a signal is tearing the run down.
func (h *Harness) Interrupted() bool { return h.interrupted.Load() }

// Close tears the sandbox down (once) and removes the built binary.
func (h *Harness) Close(why string) error {
	var err error
	h.once.Do(func() {
		h.logf("tearing the sandbox down (%s)", why)
		h.mu.Lock()
		sb, binDir := h.SB, h.binDir
		h.mu.Unlock()
		if sb != nil {
			err = sb.Close()
		}
		if binDir != "" {
			err = errors.Join(err, os.RemoveAll(binDir))
		}
		close(h.done)
	})
	return err
}
