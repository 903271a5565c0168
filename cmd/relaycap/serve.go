package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	sddaemon "github.com/coreos/go-systemd/v22/daemon"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/relaycap/relaycap/config"
	"github.com/relaycap/relaycap/daemon"
)

func newServeCommand() *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the daemon: milter, policy service and admin socket",
		Long: `Run the daemon. SIGHUP reloads the config (accounts, limits, keys, log level);
a bad reload keeps the running config. SIGTERM drains open transactions
(up to 10 s) and exits.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// Catch signals first: reading a million accounts takes a
			// moment, and a SIGHUP meanwhile (or right after READY=1) must
			// not find the default action, which ends the process. Signals
			// that arrive during the start wait in sig for run.
			sig := make(chan os.Signal, 4)
			signal.Notify(sig, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
			defer signal.Stop(sig)
			fmt.Fprintf(cmd.ErrOrStderr(), "relaycap: loading the configuration (%s)\n", configName(path))
			cfg, err := config.Load(path, cmd.Flags())
			if err != nil {
				return exitError{2, err}
			}
			level := new(slog.LevelVar)
			log := newLogger(cmd.ErrOrStderr(), cfg.Log, level)
			slog.SetDefault(log)
			daemon.LimitMemory()
			d, err := daemon.Start(cfg, daemon.Options{Logger: log, Level: level, Version: version})
			if err != nil {
				var ce *daemon.ConfigError
				if errors.As(err, &ce) {
					return exitError{2, err}
				}
				return exitError{1, err}
			}
			notify("READY=1")
			returnMemory()
			if n := len(sig); n > 0 {
				log.Info("signals arrived during the start; handling them now", "signals", n)
			}
			// d.Config, not cfg: holding cfg would keep the first table of
			// accounts alive through every reload.
			return run(d, log, sig, func() (*config.Config, error) { return config.Reload(d.Config(), cmd.Flags()) })
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "", "config file (default "+config.DefaultPath+" if it exists)")
	config.BindFlags(cmd.Flags())
	return cmd
}

// run handles signals until the daemon is told to stop or fails.
func run(d *daemon.Daemon, log *slog.Logger, sig <-chan os.Signal, reload func() (*config.Config, error)) error {
	var failure error
loop:
	for {
		select {
		case s := <-sig:
			if s != syscall.SIGHUP {
				log.Info("shutting down", "signal", s.String(), "drain", daemon.DrainTimeout)
				break loop
			}
			// SIGHUPs already waiting are answered by this reload, which
			// reads the file after they came.
			stop := coalesce(sig)
			// Type=notify-reload wants the monotonic time with RELOADING=1,
			// or systemctl reload fails.
			notify(fmt.Sprintf("RELOADING=1\nMONOTONIC_USEC=%d", monotonicUsec()))
			if err := d.ReloadFrom(reload); err != nil {
				log.Error("reload failed; keeping the running config", "err", err)
			}
			notify("READY=1")
			returnMemory()
			if stop != nil {
				log.Info("shutting down", "signal", stop.String(), "drain", daemon.DrainTimeout)
				break loop
			}
		case err := <-d.Err():
			log.Error("listener failed", "err", err)
			failure = err
			break loop
		}
	}
	notify("STOPPING=1")
	ctx, cancel := context.WithTimeout(context.Background(), daemon.DrainTimeout)
	defer cancel()
	if err := d.Shutdown(ctx); err != nil {
		log.Error("shutdown", "err", err)
	}
	log.Info("stopped")
	if failure != nil {
		return exitError{1, failure}
	}
	return nil
}

// returnMemory gives the kernel back what reading the config took (for a
// million accounts, some hundred MB for a second). The Go runtime would
// return it only slowly, and two reloads in a row would stack.
func returnMemory() { debug.FreeOSMemory() }

// coalesce takes the signals waiting in sig: the SIGHUPs are dropped, and
// the first other one is returned.
func coalesce(sig <-chan os.Signal) (stop os.Signal) {
	for {
		select {
		case s := <-sig:
			if s != syscall.SIGHUP && stop == nil {
				stop = s
			}
		default:
			return stop
		}
	}
}

// configName is what serve says it loads.
func configName(path string) string {
	if path != "" {
		return path
	}
	return config.DefaultPath + " if it exists, else the built-in defaults"
}

func newLogger(w io.Writer, c config.LogConfig, level *slog.LevelVar) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(c.Level)); err == nil {
		level.Set(l)
	}
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// notify tells systemd (Type=notify-reload) about our state, if it is
// listening on $NOTIFY_SOCKET; sd_notify(3) through go-systemd.
func notify(state string) {
	if _, err := sddaemon.SdNotify(false, state); err != nil {
		slog.Warn("sd_notify failed", "state", state, "err", err)
	}
}

// monotonicUsec is CLOCK_MONOTONIC in microseconds, as sd_notify(3) wants.
func monotonicUsec() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0
	}
	return ts.Nano() / 1000
}
