package idheader

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
)

const newFileHeader = `# relaycap identification keys, written by "relaycap id keygen".
# One key per line: <id> <base64 of 32 random bytes>. The first key seals
# new tokens; every key opens old ones, so keep retired keys as long as
# complaints may arrive. Keep this file mode 640, group of the daemon.
`

// Outcome says what Keygen did to the keys file.
type Outcome int

// The outcomes of Keygen; the zero Outcome is none of them.
const (
	Created Outcome = iota + 1 // the file did not exist; it holds the new key
	Filled                     // the file held no key (packages create it empty)
	Rotated                    // the new key went before the keys already there
)

// NewKey is the key Keygen added and what it did to the file.
type NewKey struct {
	ID      string
	Outcome Outcome
}

// Keygen adds a new key drawn from random (crypto/rand if nil) and reports
// its id and what it did. If path does not exist it is created with mode
// 0640 holding that key. Otherwise the file is rotated: the new key goes
// before the existing keys, which stay to open old tokens, and the file
// keeps its comments, mode, owner and group. The file is replaced atomically (temporary file
// in the same directory, fsync, rename), so readers see the old file or
// the new one, never part of one. Two Keygen calls racing on one file may
// lose one of the new keys; run one at a time.
func Keygen(path string, random io.Reader) (NewKey, error) {
	if random == nil {
		random = rand.Reader
	}
	// Rotate the file a symlink points to rather than replace the link; a
	// link to a file not there yet creates that file.
	if p, err := filepath.EvalSymlinks(path); err == nil {
		path = p
	} else if target, lerr := os.Readlink(path); lerr == nil {
		if !filepath.IsAbs(target) {
			target = filepath.Join(filepath.Dir(path), target)
		}
		path = target
	}
	data, fi, err := readKeysFile(path)
	create := errors.Is(err, fs.ErrNotExist)
	if err != nil && !create {
		return NewKey{}, err
	}
	var entries []entry
	fill := false // a file with no key yet (packages create it empty)
	if !create {
		entries, err = parseEntries(data)
		fill = errors.Is(err, ErrNoKeys)
		if err != nil && !fill {
			return NewKey{}, fmt.Errorf("keys file %s: %w; fix it before rotating", path, err)
		}
	}
	id, err := nextKeyID(entries)
	if err != nil {
		return NewKey{}, err
	}
	key := make([]byte, keyLen)
	if _, err := io.ReadFull(random, key); err != nil {
		return NewKey{}, fmt.Errorf("reading random key: %w", err)
	}
	var did Outcome
	switch {
	case create:
		did = Created
		data = append([]byte(newFileHeader), keyLine(id, key)...)
		err = writeNew(path, data)
	case fill:
		did = Filled
		if len(bytes.TrimSpace(data)) == 0 {
			data = []byte(newFileHeader)
		} else if data[len(data)-1] != '\n' {
			data = append(data, '\n')
		}
		err = replace(path, append(data, keyLine(id, key)...), fi)
	default:
		did = Rotated
		data = insertLine(data, entries[0].line, keyLine(id, key))
		err = replace(path, data, fi)
	}
	if err != nil {
		return NewKey{}, err
	}
	return NewKey{ID: strconv.Itoa(int(id)), Outcome: did}, nil
}

// nextKeyID returns one more than the highest id in use, or once that
// would pass 65535, the lowest free one.
func nextKeyID(entries []entry) (uint16, error) {
	used := make(map[uint16]bool, len(entries))
	var top uint16
	for _, e := range entries {
		used[e.id] = true
		top = max(top, e.id)
	}
	if top < maxKeyID {
		return top + 1, nil
	}
	for id := uint16(1); id < maxKeyID; id++ {
		if !used[id] {
			return id, nil
		}
	}
	return 0, errors.New("every key id is in use; remove retired keys")
}

// insertLine returns data with line inserted before line number n (1-based).
func insertLine(data []byte, n int, line []byte) []byte {
	off := 0
	for range n - 1 {
		off += bytes.IndexByte(data[off:], '\n') + 1
	}
	out := make([]byte, 0, len(data)+len(line))
	out = append(out, data[:off]...)
	out = append(out, line...)
	return append(out, data[off:]...)
}

// writeNew creates path with data, failing if something else created it
// meanwhile: link(2) will not replace an existing name.
func writeNew(path string, data []byte) error {
	tmp, err := writeTemp(path, data, 0o640, nil)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	if err := os.Link(tmp, path); err != nil {
		return fmt.Errorf("creating keys file: %w", err)
	}
	return syncDir(filepath.Dir(path))
}

// replace swaps path for a file holding data, with the mode, owner and
// group of the file it replaces.
func replace(path string, data []byte, old os.FileInfo) error {
	tmp, err := writeTemp(path, data, old.Mode().Perm(), old)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("replacing keys file: %w", err)
	}
	return syncDir(filepath.Dir(path))
}

// writeTemp writes data to a new file beside path and returns its name.
// The file is created 0600, so it is never open to others while written.
func writeTemp(path string, data []byte, perm os.FileMode, owner os.FileInfo) (name string, err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return "", fmt.Errorf("writing keys file: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if owner != nil {
		if err = keepOwner(f, owner); err != nil {
			return "", fmt.Errorf("keeping the owner of %s: %w", path, err)
		}
	}
	// Chmod after chown: chown may clear mode bits.
	if err = f.Chmod(perm); err != nil {
		return "", err
	}
	if _, err = f.Write(data); err != nil {
		return "", err
	}
	if err = f.Sync(); err != nil {
		return "", err
	}
	if err = f.Close(); err != nil {
		return "", err
	}
	return f.Name(), nil
}

// syncDir makes a rename or link in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
