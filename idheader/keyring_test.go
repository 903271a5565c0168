package idheader

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestBadKeysFiles: each testdata/keys/NAME.keys must fail with the text in NAME.err.
func TestBadKeysFiles(t *testing.T) {
	files, _ := filepath.Glob("testdata/keys/*.err")
	if len(files) < 10 {
		t.Fatalf("only %d cases", len(files))
	}
	for _, errFile := range files {
		name := strings.TrimSuffix(errFile, ".err")
		t.Run(filepath.Base(name), func(t *testing.T) {
			want, _ := os.ReadFile(errFile)
			f, err := os.Open(name + ".keys")
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			_, err = ParseKeyring(f)
			if err == nil || !strings.Contains(err.Error(), strings.TrimSpace(string(want))) {
				t.Errorf("error %v, want %q", err, strings.TrimSpace(string(want)))
			}
		})
	}
}

func TestParseKeyringOrder(t *testing.T) {
	k := parseKeysFile(t, "testdata/keys/good-crlf.keys")
	if ids := k.KeyIDs(); !slices.Equal(ids, []string{"3", "1"}) || k.SealingKeyID() != "3" {
		t.Errorf("ids %v, sealing %s", ids, k.SealingKeyID())
	}
	tok := mustSeal(t, k, sampleFields(), "")
	if got, err := k.Open(tok); err != nil || got.KeyID != "3" {
		t.Errorf("%+v %v", got, err)
	}
}

func TestLoadKeyringMode(t *testing.T) {
	data, err := os.ReadFile("testdata/test.keys")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "id.keys")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		mode os.FileMode
		ok   bool
	}{{0o640, true}, {0o600, true}, {0o660, true}, {0o400, true}, {0o644, false}, {0o642, false}, {0o641, false}, {0o666, false}} {
		if err := os.Chmod(path, c.mode); err != nil {
			t.Fatal(err)
		}
		k, err := LoadKeyring(path)
		switch {
		case c.ok && (err != nil || len(k.KeyIDs()) != 2):
			t.Errorf("mode %04o: %v", c.mode, err)
		case !c.ok && !errors.Is(err, ErrPermissions):
			t.Errorf("mode %04o: %v, want ErrPermissions", c.mode, err)
		case !c.ok && !strings.Contains(err.Error(), "chmod 640 "+path):
			t.Errorf("mode %04o: %q does not say how to fix it", c.mode, err)
		}
	}
}

func TestLoadKeyringErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := LoadKeyring(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	if _, err := LoadKeyring(dir); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("directory: %v", err)
	}
	bad := filepath.Join(dir, "bad.keys")
	if err := os.WriteFile(bad, []byte("1 2 3\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadKeyring(bad); err == nil || !strings.Contains(err.Error(), bad+": line 1:") {
		t.Errorf("malformed file: %v, want path and line", err)
	}
}
