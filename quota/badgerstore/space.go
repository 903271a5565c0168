package badgerstore

import (
	"errors"
	"fmt"
	"syscall"
)

// ErrLowSpace means the state directory's filesystem has less free space
// than Options.MinFreeBytes, so the store refuses to write.
var ErrLowSpace = errors.New("state directory is low on disk space")

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
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return fmt.Errorf("free space of %s: %w", dir, err)
	}
	free := st.Bavail * uint64(st.Bsize)
	if free < min {
		return fmt.Errorf("%w: %s has %s free, the store keeps %s free (store.min_free_mb)",
			ErrLowSpace, dir, mib(free), mib(min))
	}
	return nil
}

func mib(b uint64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
