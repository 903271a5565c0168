package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relaycap/relaycap/admin"
	"github.com/relaycap/relaycap/quota"
)

// commit counts n relays for login through the engine, as the milter does.
func (c *cliDaemon) commit(t *testing.T, login string, n int) {
	t.Helper()
	var txn quota.Txn
	now := time.Now()
	for range n {
		if d, err := c.d.Engine().Reserve(context.Background(), &txn, login, now); err != nil || !d.Allowed() {
			t.Fatalf("reserve for %s: %+v %v", login, d, err)
		}
	}
	if _, err := c.d.Engine().Commit(context.Background(), &txn, now); err != nil {
		t.Fatal(err)
	}
}

func TestStatusCommand(t *testing.T) {
	c := startCLIDaemon(t, "quota: {accounts: {alice@example.com: 10, sus@example.com: {daily_limit: 4, status: suspended}}}\n")
	out, e, code := c.run(t, "", "account", "set", "carol@example.com", "--daily-limit", "20")
	wantRun(t, "set", out, e, code, 0)
	c.commit(t, "alice@example.com", 3)
	c.commit(t, "carol@example.com", 1)

	out, e, code = c.run(t, "", "status")
	// The table's column width is not the point: compare with single spaces.
	out = strings.Join(strings.Fields(out), " ")
	wantRun(t, "status", out, e, code, 0,
		"version: dev", "health: ok", "store: badger in ", "key ids: 1 (sealing: 1)",
		"listeners: admin unix:", "milter unix:", "policy unix:",
		"accounts: 2 active, 1 suspended, 0 terminated (file and store)",
		"relays today: 4 of 30 sold (13.3%)", "last reload:", " ok ",
		"top accounts today: 1. alice@example.com 3 2. carol@example.com 1")

	out, e, code = c.run(t, "", "status", "--json")
	wantRun(t, "status --json", out, e, code, 0)
	var s admin.Status
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	if s.RelaysUsed != 4 || s.RelaysSold != 30 || len(s.Top) != 2 || s.Health != "ok" || !s.LastReload.OK || len(s.KeyIDs) != 1 {
		t.Fatalf("status --json: %+v", s)
	}
}

func TestStatusWithoutDaemon(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "admin.sock")
	out, e, code := runAdminCLI(t, "", "status", "--admin", "unix:"+sock)
	wantRun(t, "no daemon", out, e, code, 1, "relaycap: relaycap is not running (nothing answers on unix:"+sock)
	if lines := strings.Count(strings.TrimSpace(e), "\n"); lines != 0 || out != "" {
		t.Fatalf("more than one line:\nstdout %q\nstderr %q", out, e)
	}
}
