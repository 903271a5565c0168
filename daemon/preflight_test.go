package daemon

import (
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
