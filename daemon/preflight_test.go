package daemon

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relaycap/relaycap/config"
)

// TestPreflightChecksTheGroupOnlyForUnixSockets: socket.group applies to
// unix sockets alone, so a group that does not exist is an error only when
// one of the listeners is a unix socket.
func TestPreflightChecksTheGroupOnlyForUnixSockets(t *testing.T) {
	dir := t.TempDir()
	inet := "inet:127.0.0.1:0"
	for _, c := range []struct {
		milter, policy, admin string
		wantErr               bool
	}{
		{inet, inet, inet, false},
		{"unix:" + filepath.Join(dir, "m.sock"), inet, inet, true},
		{inet, "unix:" + filepath.Join(dir, "p.sock"), inet, true},
		{inet, inet, "unix:" + filepath.Join(dir, "a.sock"), true},
	} {
		cfg := config.Defaults()
		cfg.IDHeader.KeysFile = filepath.Join(dir, "id.keys") // missing: no error
		cfg.Milter.Listen, cfg.Policy.Listen, cfg.Admin.Listen = c.milter, c.policy, c.admin
		cfg.Socket.Group = "no-such-group-relaycap"
		err := Preflight(cfg)
		if got := err != nil && strings.Contains(err.Error(), "socket.group"); got != c.wantErr {
			t.Errorf("milter %s, policy %s, admin %s: %v; want a socket.group error: %v", c.milter, c.policy, c.admin, err, c.wantErr)
		}
	}
}

// TestPreflightRefusesARedisPasswordOthersCanRead: store.redis.password_file
// must be private; a file others may read is a config error (config check
// and serve), a private one passes, and badger ignores the setting.
func TestPreflightRefusesARedisPasswordOthersCanRead(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "redis.password")
	cfg := config.Defaults()
	cfg.IDHeader.KeysFile = filepath.Join(dir, "id.keys") // missing: no error
	cfg.Store.Backend = config.BackendRedis
	cfg.Store.Redis.PasswordFile = path
	for _, c := range []struct {
		mode    os.FileMode
		wantErr bool
	}{{0o644, true}, {0o604, true}, {0o640, false}, {0o600, false}} {
		if err := os.WriteFile(path, []byte("s3cret\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, c.mode); err != nil {
			t.Fatal(err)
		}
		err := Preflight(cfg)
		if got := err != nil && strings.Contains(err.Error(), "store.redis.password_file") && strings.Contains(err.Error(), "others may read it"); got != c.wantErr {
			t.Errorf("mode %04o: %v; want the password_file refused: %v", c.mode, err, c.wantErr)
		}
		var ce *ConfigError
		if c.wantErr && !errors.As(err, &ce) {
			t.Errorf("mode %04o: %v is not a ConfigError (exit 2)", c.mode, err)
		}
	}
	cfg.Store.Backend = config.BackendBadger
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Preflight(cfg); err != nil {
		t.Errorf("badger backend with an open password file: %v, want it ignored", err)
	}
}
