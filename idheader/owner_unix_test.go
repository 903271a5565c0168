//go:build unix

package idheader

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestKeygenKeepsOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to chown")
	}
	path := filepath.Join(t.TempDir(), "id.keys")
	if _, err := Keygen(path, nil); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(path, 4321, 8765); err != nil {
		t.Fatal(err)
	}
	if _, err := Keygen(path, nil); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(path)
	st := fi.Sys().(*syscall.Stat_t)
	if st.Uid != 4321 || st.Gid != 8765 || fi.Mode().Perm() != 0o640 {
		t.Errorf("owner %d:%d mode %v, want 4321:8765 0640", st.Uid, st.Gid, fi.Mode())
	}
}
