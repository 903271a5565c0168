package daemon

import (
	"os"
	"runtime/debug"
)

// MemoryLimit is the Go runtime's soft memory limit for the serving
// process when GOMEMLIMIT sets none. Left alone, the collector lets the
// heap grow to twice what is live (Badger's memtables and caches, some
// 25 MB), which took a daemon with a million accounts to about 90 MB
// resident; near this limit it collects sooner instead, and the daemon
// stays near 56 MB (make bench-floor). It is soft: a heap that must be
// larger grows all the same, the collector then capped at half the CPU.
const MemoryLimit = 40 << 20

// LimitMemory sets MemoryLimit unless GOMEMLIMIT is set (GOMEMLIMIT=off
// lifts any limit). Only the serving process calls it.
func LimitMemory() {
	if _, set := os.LookupEnv("GOMEMLIMIT"); !set {
		debug.SetMemoryLimit(MemoryLimit)
	}
}
