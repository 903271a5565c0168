package daemon

import (
	"os"
	"runtime/debug"
)

// MemoryLimit is the Go runtime's soft memory limit for the serving
// process when GOMEMLIMIT sets none. Left alone, the collector lets the
// heap grow to twice what is live (Badger's memtables and the caches,
// some 17 MB under load), which took a daemon with a million accounts to
// about 90 MB resident; near this limit it collects sooner instead
// (about every 100 ms under milter load, a few percent of its CPU), and
// the daemon stays near 56 MiB (make bench-floor; 64 MiB at a 40 MiB
// limit). It is soft: a heap that must be larger grows all the same, the
// collector then capped at half the CPU.
const MemoryLimit = 32 << 20

// LimitMemory sets MemoryLimit unless GOMEMLIMIT is set (GOMEMLIMIT=off
// lifts any limit). Only the serving process calls it.
func LimitMemory() {
	if _, set := os.LookupEnv("GOMEMLIMIT"); !set {
		debug.SetMemoryLimit(MemoryLimit)
	}
}
