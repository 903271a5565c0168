package idheader

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestKeygenCreate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "id.keys")
	k1, err := Keygen(path, nil)
	if err != nil || k1 != (NewKey{"1", Created}) {
		t.Fatalf("Keygen = %+v, %v; want key 1 created", k1, err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o640 {
		t.Fatalf("mode %v, %v; want 0640", fi.Mode(), err)
	}
	k, err := LoadKeyring(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := k.Open(mustSeal(t, k, sampleFields(), "")); err != nil || got.KeyID != "1" {
		t.Errorf("%+v %v", got, err)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("left behind: %v", entries)
	}
}

func TestKeygenRotate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "id.keys")
	if _, err := Keygen(path, nil); err != nil {
		t.Fatal(err)
	}
	// An operator's comment, and a tighter mode, must survive rotation.
	data, _ := os.ReadFile(path)
	data = append(data, "# retired 2026-01\n"...)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	k1, _ := LoadKeyring(path)
	old := mustSeal(t, k1, sampleFields(), "<a@b>")

	for want := 2; want <= 4; want++ {
		k, err := Keygen(path, nil)
		if err != nil || k != (NewKey{strconv.Itoa(want), Rotated}) {
			t.Fatalf("rotation: %+v, %v; want key %d rotated in", k, err, want)
		}
	}
	k, err := LoadKeyring(path)
	if err != nil {
		t.Fatal(err)
	}
	if ids := k.KeyIDs(); !slices.Equal(ids, []string{"4", "3", "2", "1"}) {
		t.Errorf("ids %v, want newest first", ids)
	}
	if f, err := k.Open(old); err != nil || f.KeyID != "1" || !f.BindsMessageID("<a@b>") {
		t.Errorf("old token after rotation: %+v, %v", f, err)
	}
	if f, err := k.Open(mustSeal(t, k, sampleFields(), "")); err != nil || f.KeyID != "4" {
		t.Errorf("new token: %+v, %v", f, err)
	}
	now, _ := os.ReadFile(path)
	if !bytes.HasPrefix(now, []byte(newFileHeader+"4 ")) || !bytes.HasSuffix(now, []byte("# retired 2026-01\n")) {
		t.Errorf("layout not kept:\n%s", now)
	}
	// The old key line is unchanged, byte for byte.
	if !bytes.Contains(now, bytes.TrimPrefix(data, []byte(newFileHeader))) {
		t.Errorf("old lines changed:\n%s", now)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600 kept", fi.Mode())
	}
}

func TestKeygenRefuses(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		name, data string
		mode       os.FileMode
		want       string
	}{
		{"open.keys", "", 0o644, "chmod 640"},
		{"bad.keys", "1 no!pe\n", 0o640, "line 1: key is not standard base64"},
	} {
		path := filepath.Join(dir, c.name)
		if err := os.WriteFile(path, []byte(c.data), c.mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(path, c.mode)
		if _, err := Keygen(path, nil); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
		if now, _ := os.ReadFile(path); string(now) != c.data {
			t.Errorf("%s changed", c.name)
		}
	}
	if _, err := Keygen(filepath.Join(dir, "no-such-dir", "id.keys"), nil); err == nil {
		t.Error("created a file in a missing directory")
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("entropy exhausted") }

// TestKeygenFailureKeepsFile: a rotation that fails leaves the old file and no temporary.
func TestKeygenFailureKeepsFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "id.keys")
	if _, err := Keygen(path, nil); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(path)
	if _, err := Keygen(path, io.MultiReader(bytes.NewReader(make([]byte, 10)), failingReader{})); err == nil {
		t.Fatal("no error from a failing random source")
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Error("file changed")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("left behind: %v", entries)
	}
}

// TestKeygenAtomic reads the file continuously while it is rotated: every
// read must be a whole, valid keys file, holding every earlier key in order.
func TestKeygenAtomic(t *testing.T) {
	path := filepath.Join(t.TempDir(), "id.keys")
	if _, err := Keygen(path, nil); err != nil {
		t.Fatal(err)
	}
	var done atomic.Bool
	var reads atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for !done.Load() {
				k, err := LoadKeyring(path)
				if err != nil {
					t.Error(err)
					return
				}
				ids := k.KeyIDs()
				for i, id := range ids {
					if want := len(ids) - i; id != strconv.Itoa(want) {
						t.Errorf("ids %v out of order", ids)
						return
					}
				}
				reads.Add(1)
			}
		})
	}
	// Each rotation waits for a read after the previous one, so reads and
	// rotations interleave however loaded the machine is.
	const rotations = 60
	for range rotations {
		for last, deadline := reads.Load(), time.Now().Add(10*time.Second); reads.Load() == last && time.Now().Before(deadline); {
			runtime.Gosched()
		}
		if _, err := Keygen(path, nil); err != nil {
			t.Error(err)
			break
		}
	}
	done.Store(true)
	wg.Wait()
	k, _ := LoadKeyring(path)
	if len(k.KeyIDs()) != rotations+1 {
		t.Errorf("%d keys, want %d", len(k.KeyIDs()), rotations+1)
	}
	if reads.Load() < rotations {
		t.Errorf("%d reads for %d rotations: they did not interleave", reads.Load(), rotations)
	}
	t.Logf("%d concurrent reads, all valid", reads.Load())
}

func TestKeygenFollowsSymlink(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "secrets", "id.keys")
	os.Mkdir(filepath.Dir(real), 0o750)
	if _, err := Keygen(real, nil); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "id.keys")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	if k, err := Keygen(link, nil); err != nil || k != (NewKey{"2", Rotated}) {
		t.Fatalf("%+v %v", k, err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("symlink replaced: %v %v", fi.Mode(), err)
	}
	if k, err := LoadKeyring(real); err != nil || len(k.KeyIDs()) != 2 {
		t.Errorf("target not rotated: %v", err)
	}
}

// TestKeygenFillsAnEmptyFile: a packager creates the file first to set its
// group (install -m 640 -g relaycap /dev/null id.keys); keygen fills it,
// keeping its mode and any comment, and the daemon can then load it.
func TestKeygenFillsAnEmptyFile(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{"empty.keys": "", "comment.keys": "# site keys\n"} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadKeyring(path); !errors.Is(err, ErrNoKeys) {
			t.Errorf("%s before keygen: %v, want ErrNoKeys", name, err)
		}
		if k, err := Keygen(path, nil); err != nil || k != (NewKey{"1", Filled}) {
			t.Fatalf("%s: keygen %+v, %v; want key 1 filled in", name, k, err)
		}
		k, err := LoadKeyring(path)
		if err != nil || len(k.KeyIDs()) != 1 {
			t.Fatalf("%s after keygen: %v", name, err)
		}
		data, _ := os.ReadFile(path)
		if !strings.HasPrefix(string(data), "#") || (body != "" && !strings.HasPrefix(string(data), body)) {
			t.Errorf("%s lost its comment or got none:\n%s", name, data)
		}
		if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want the file's own 0600", name, fi.Mode().Perm())
		}
	}
}

// TestKeygenThroughDanglingSymlink: a link to a keys file not made yet
// creates the target, and the link stays.
func TestKeygenThroughDanglingSymlink(t *testing.T) {
	dir := t.TempDir()
	os.Mkdir(filepath.Join(dir, "secrets"), 0o750)
	link := filepath.Join(dir, "id.keys")
	if err := os.Symlink("secrets/id.keys", link); err != nil {
		t.Fatal(err)
	}
	if _, err := Keygen(link, nil); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("symlink replaced: %v", err)
	}
	if _, err := LoadKeyring(filepath.Join(dir, "secrets", "id.keys")); err != nil {
		t.Errorf("target: %v", err)
	}
}

func TestNextKeyID(t *testing.T) {
	for _, c := range []struct {
		ids  []uint16
		want uint16
	}{{nil, 1}, {[]uint16{3, 9, 2}, 10}, {[]uint16{65535, 1, 2}, 3}} {
		var es []entry
		for _, id := range c.ids {
			es = append(es, entry{id: id})
		}
		if got, err := nextKeyID(es); err != nil || got != c.want {
			t.Errorf("%v: %d %v, want %d", c.ids, got, err, c.want)
		}
	}
}
