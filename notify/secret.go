package notify

import (
	"bytes"
	"errors"
	"fmt"
	"os"
)

// ReadSecret reads the webhook signing key: the file's content without
// surrounding white space. A file others may read, or an empty one, is
// refused: anyone holding the key can forge events.
func ReadSecret(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o007 != 0 {
		return nil, fmt.Errorf("%s: mode %#o lets others read the webhook secret (chmod 640)", path, perm)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil, errors.New(path + ": the webhook secret is empty")
	}
	return b, nil
}
