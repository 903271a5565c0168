// Command profserve runs the wiring of `relaycap serve` (daemon.Start) under
// the CPU profiler, for make bench-floor's -profile runs: it serves until
// SIGTERM, then drains, stops the profile and writes it. Asked for a heap
// profile, it writes one at SIGTERM, before the drain.
//
//	go run ./test/load/profserve -config relaycap.yaml -cpuprofile cpu.pprof
//
// It also runs where relaycap's binary is expected (RELAYCAP_E2E_BIN for
// make bench-e2e): a first argument "serve" is skipped, any other
// subcommand (id keygen …) runs $PROFSERVE_RELAYCAP instead, and the
// profile paths default to $PROFSERVE_CPU and $PROFSERVE_HEAP.
package main

import (
	"context"
	"flag"
	"log"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"

	"github.com/relaycap/relaycap/config"
	"github.com/relaycap/relaycap/daemon"
)

func main() {
	var cfgPath, cpu, heap string
	flag.StringVar(&cfgPath, "config", "", "relaycap config file")
	flag.StringVar(&cpu, "cpuprofile", os.Getenv("PROFSERVE_CPU"), "write a CPU profile of the whole run here")
	flag.StringVar(&heap, "memprofile", os.Getenv("PROFSERVE_HEAP"), "write a heap profile at SIGTERM here")
	args := os.Args[1:]
	if len(args) > 0 && args[0] == "serve" {
		args = args[1:]
	} else if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		bin := os.Getenv("PROFSERVE_RELAYCAP")
		if bin == "" {
			log.Fatalf("profserve: %q is relaycap's; set PROFSERVE_RELAYCAP to its binary", args[0])
		}
		log.Fatal(syscall.Exec(bin, append([]string{bin}, args...), os.Environ()))
	}
	flag.CommandLine.Parse(args)
	cfg, err := config.Load(cfgPath, nil)
	if err != nil {
		log.Fatal(err)
	}
	level := new(slog.LevelVar)
	var l slog.Level
	if err := l.UnmarshalText([]byte(cfg.Log.Level)); err == nil {
		level.Set(l)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	var f *os.File
	if cpu != "" {
		if f, err = os.Create(cpu); err != nil {
			log.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Fatal(err)
		}
	}
	daemon.LimitMemory() // as relaycap serve does
	d, err := daemon.Start(cfg, daemon.Options{Logger: logger, Level: level})
	if err != nil {
		log.Fatal(err)
	}
	notifyReady()
	select {
	case <-sig:
	case err := <-d.Err():
		logger.Error("listener failed", "err", err)
	}
	// The heap as it was serving, before Shutdown lets the store go.
	if heap != "" {
		h, err := os.Create(heap)
		if err != nil {
			log.Fatal(err)
		}
		pprof.Lookup("heap").WriteTo(h, 0)
		h.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), daemon.DrainTimeout)
	defer cancel()
	d.Shutdown(ctx)
	if f != nil {
		pprof.StopCPUProfile()
		f.Close()
	}
}

// notifyReady sends READY=1 to $NOTIFY_SOCKET, as relaycap serve does.
func notifyReady() {
	addr := os.Getenv("NOTIFY_SOCKET")
	if addr == "" {
		return
	}
	if c, err := net.Dial("unixgram", addr); err == nil {
		c.Write([]byte("READY=1"))
		c.Close()
	}
}
