//go:build e2e

package e2e

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// StateFree is the space available on relaycap's state filesystem.
func (s *Sandbox) StateFree() (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(s.StateDir(), &st); err != nil {
		return 0, err
	}
	return st.Bavail * uint64(st.Bsize), nil
}

// FillState allocates a file on the state tmpfs (Options.StateTmpfsMB) so
// that leave bytes stay free; the returned function deletes it.
func (s *Sandbox) FillState(leave uint64) (undo func() error, err error) {
	s.mu.Lock()
	mounted := s.stateMount
	s.mu.Unlock()
	if !mounted {
		return nil, errors.New("FillState needs the state tmpfs (Options.StateTmpfsMB)")
	}
	free, err := s.StateFree()
	if err != nil {
		return nil, err
	}
	if free <= leave {
		return nil, fmt.Errorf("state filesystem has %d bytes free, not more than %d", free, leave)
	}
	path := s.path("rc", "state", "filler")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, err
	}
	// fallocate takes the blocks at once; tmpfs supports it.
	err = syscall.Fallocate(int(f.Fd()), 0, 0, int64(free-leave))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	undo = func() error { return os.Remove(path) }
	if err != nil {
		undo()
		return nil, fmt.Errorf("fill %s: %w", path, err)
	}
	return undo, nil
}
