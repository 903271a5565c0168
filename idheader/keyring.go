package idheader

import (
	"bytes"
	"crypto/cipher"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// The keys file holds one key per line, newest first:
//
//	# relaycap identification keys: <id> <base64 key>, newest first
//	3 q8m1...base64 of 32 random bytes...=
//	2 Zk4v...=
//
// An id is a decimal number from 1 to 65535 written without leading zeros;
// a key is 32 bytes in standard, padded base64 (as `openssl rand -base64 32`
// prints). Blank lines and lines starting with # are ignored. The first key
// seals; every key opens, so old tokens stay readable after a rotation.
// The file must not be accessible by others (mode 640 or stricter).
// With random nonces a key may seal at most 2^32 tokens; rotating yearly
// keeps far below that.

// ErrPermissions: the keys file is readable or writable by others.
var ErrPermissions = errors.New("keys file is accessible by others")

// maxKeysFile bounds what we read; a thousand keys take 50 kB.
const maxKeysFile = 1 << 20

// Keyring holds the keys loaded from a keys file. It is immutable and safe
// for concurrent use.
type Keyring struct {
	keys []key // file order; keys[0] seals
	byID map[uint16]cipher.AEAD
}

type key struct {
	id   uint16
	aead cipher.AEAD
}

// entry is one key line of a keys file.
type entry struct {
	line int // 1-based
	id   uint16
	key  []byte
}

// ErrNoKeys means a keys file holds no key line (a file a package created
// empty, for instance): Keygen fills it.
var ErrNoKeys = errors.New("no keys; create one with: relaycap id keygen")

// LoadKeyring reads a keys file, refusing one that others may read or write.
func LoadKeyring(path string) (*Keyring, error) {
	data, _, err := readKeysFile(path)
	if err != nil {
		return nil, err
	}
	k, err := parseKeyring(data)
	if err != nil {
		return nil, fmt.Errorf("keys file %s: %w", path, err)
	}
	return k, nil
}

// ParseKeyring parses keys in the keys-file format without any mode check.
func ParseKeyring(r io.Reader) (*Keyring, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxKeysFile+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxKeysFile {
		return nil, fmt.Errorf("keys file larger than %d bytes", maxKeysFile)
	}
	return parseKeyring(data)
}

// KeyIDs returns the ids of the keys in file order; the first one seals.
func (k *Keyring) KeyIDs() []string {
	ids := make([]string, len(k.keys))
	for i, e := range k.keys {
		ids[i] = strconv.Itoa(int(e.id))
	}
	return ids
}

// SealingKeyID returns the id of the key that Seal uses.
func (k *Keyring) SealingKeyID() string { return strconv.Itoa(int(k.keys[0].id)) }

// readKeysFile reads a keys file after checking that it is a regular file
// closed to others.
func readKeysFile(path string) ([]byte, os.FileInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("keys file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat() // of the file opened, not of a name that may change
	if err != nil {
		return nil, nil, fmt.Errorf("keys file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("keys file %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o007 != 0 {
		return nil, nil, fmt.Errorf("%w: %s has mode %04o, so its secret keys are exposed to every local user; fix with: chmod 640 %s (owner root, group of the relaycap daemon)",
			ErrPermissions, path, perm, path)
	}
	if fi.Size() > maxKeysFile {
		return nil, nil, fmt.Errorf("keys file %s is larger than %d bytes", path, maxKeysFile)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeysFile))
	return data, fi, err
}

func parseKeyring(data []byte) (*Keyring, error) {
	entries, err := parseEntries(data)
	if err != nil {
		return nil, err
	}
	k := &Keyring{byID: make(map[uint16]cipher.AEAD, len(entries))}
	for _, e := range entries {
		aead, err := newAEAD(e.key)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", e.line, err)
		}
		k.keys = append(k.keys, key{id: e.id, aead: aead})
		k.byID[e.id] = aead
	}
	return k, nil
}

// parseEntries checks every line and returns the keys in file order.
func parseEntries(data []byte) ([]entry, error) {
	var entries []entry
	seen := make(map[uint16]int)
	for i, line := range strings.Split(string(data), "\n") {
		n := i + 1
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 2 {
			return nil, fmt.Errorf(`line %d: want "<id> <base64 key>", found %d fields`, n, len(f))
		}
		id, err := parseKeyID(f[0])
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		if prev, dup := seen[id]; dup {
			return nil, fmt.Errorf("line %d: key id %d already used on line %d", n, id, prev)
		}
		seen[id] = n
		key, err := base64.StdEncoding.Strict().DecodeString(f[1])
		if err != nil {
			return nil, fmt.Errorf("line %d: key is not standard base64: %v", n, err)
		}
		if len(key) != keyLen {
			return nil, fmt.Errorf("line %d: key is %d bytes, want %d (AES-256)", n, len(key), keyLen)
		}
		entries = append(entries, entry{line: n, id: id, key: key})
	}
	if len(entries) == 0 {
		return nil, ErrNoKeys
	}
	return entries, nil
}

// parseKeyID accepts only the canonical spelling, so "7" and "07" cannot
// name the same key twice.
func parseKeyID(s string) (uint16, error) {
	v, err := strconv.ParseUint(s, 10, 16)
	if err != nil || v == 0 || strconv.FormatUint(v, 10) != s {
		return 0, fmt.Errorf("key id %q is not a number from 1 to %d", s, maxKeyID)
	}
	return uint16(v), nil
}

// keyLine formats one line of the keys file.
func keyLine(id uint16, key []byte) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%d %s\n", id, base64.StdEncoding.EncodeToString(key))
	return b.Bytes()
}
