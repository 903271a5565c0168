package badgerstore

import (
	"errors"
	"fmt"
	"syscall"
	"time"
)

// ErrLowSpace means the state directory's filesystem has less free space
// than Options.MinFreeBytes, so the store refuses to write.
var ErrLowSpace = errors.New("state directory is low on disk space")

// spaceTTL is how long a statfs answer above the threshold stands for the
// free space. Every allowed recipient asks (under its account's lock) and
// every commit asks again; one statfs a second instead of one each keeps
// the system call off the hot path, and a disk that fills is noticed at
// most a second late, while MinFreeBytes of headroom are still there.
const spaceTTL = time.Second

// spaceReading is one statfs answer and when it was taken.
type spaceReading struct {
	at   time.Time
	free uint64
	err  error
}

// checkSpace returns an error wrapping ErrLowSpace when dir's filesystem has
// fewer than min bytes available to us; min 0 disables the check.
//
// Badger writes through memory-mapped files: on a full filesystem the
// kernel answers a write to a new page with SIGBUS, which kills the process
// instead of returning ENOSPC. Refusing to write while there is still
// headroom turns a full disk into temporary failures and a clear message.
func checkSpace(dir string, min uint64) error {
	if min == 0 {
		return nil
	}
	free, err := AvailableBytes(dir)
	return spaceVerdict(dir, free, err, min)
}

func spaceVerdict(dir string, free uint64, err error, min uint64) error {
	if err != nil {
		return fmt.Errorf("free space of %s: %w", dir, err)
	}
	if free < min {
		return fmt.Errorf("%w: %s has %s free, the store keeps %s free (store.min_free_mb)",
			ErrLowSpace, dir, mib(free), mib(min))
	}
	return nil
}

// AvailableBytes is the space statfs says an unprivileged writer may use
// on dir's filesystem; the metrics snapshot reports the same figure.
func AvailableBytes(dir string) (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return st.Bavail * uint64(st.Bsize), nil
}

// freeBytes answers from the last reading while it is younger than
// spaceTTL and was above the threshold. A low or failed reading is never
// reused: while the disk is low every call looks again, so writes resume
// as soon as space is back. Concurrent callers may both refresh.
func (s *Store) freeBytes(now time.Time) (uint64, error) {
	if r := s.space.Load(); r != nil && r.err == nil && r.free >= s.minFree &&
		!now.Before(r.at) && now.Sub(r.at) < spaceTTL {
		return r.free, nil
	}
	free, err := s.statfs(s.dir)
	s.space.Store(&spaceReading{at: now, free: free, err: err})
	return free, err
}

func mib(b uint64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
