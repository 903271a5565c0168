package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// run executes the real root command in process and returns what main
// would print and exit with.
func runCLI(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	root := newRootCommand()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(args)
	if err := root.Execute(); err != nil {
		return out.String(), errOut.String() + err.Error(), exitCode(err)
	}
	return out.String(), errOut.String(), 0
}

func TestConfigCheck(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	os.WriteFile(good, []byte("quota: {accounts: {alice@example.com: 500, bob: {daily_limit: 10, status: suspended}}}\n"), 0o644)
	out, errs, code := runCLI(t, "config", "check", "--config", good)
	if code != 0 || !strings.Contains(out, "config OK") || !strings.Contains(out, "2 file-managed accounts") {
		t.Fatalf("good config: exit %d\n%s%s", code, out, errs)
	}
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("quota: {timezone: Mars/Olympus, over_quota: maybe}\nlog: {level: loud}\n"), 0o644)
	_, errs, code = runCLI(t, "config", "check", "--config", bad)
	if code != 2 {
		t.Fatalf("bad config: exit %d, want 2", code)
	}
	for _, want := range []string{"Mars/Olympus", "over_quota", "log.level", "3 problem(s)"} {
		if !strings.Contains(errs, want) {
			t.Errorf("bad config: output lacks %q:\n%s", want, errs)
		}
	}
	if _, _, code := runCLI(t, "config", "check", "--config", filepath.Join(dir, "missing.yaml")); code != 2 {
		t.Errorf("missing file: exit %d, want 2", code)
	}
	if _, _, code := runCLI(t, "serve", "--config", bad); code != 2 {
		t.Errorf("serve with a bad config: exit %d, want 2", code)
	}
	if _, _, code := runCLI(t, "serve", "--no-such-flag"); code != 2 {
		t.Errorf("unknown flag: exit %d, want 2", code)
	}
}

func TestConfigDefaultsIsAValidConfig(t *testing.T) {
	out, _, code := runCLI(t, "config", "defaults")
	path := filepath.Join(t.TempDir(), "defaults.yaml")
	os.WriteFile(path, []byte(out), 0o644)
	if code != 0 || !strings.Contains(out, "America/New_York") {
		t.Fatalf("defaults: exit %d\n%s", code, out)
	}
	if _, errs, code := runCLI(t, "config", "check", "--config", path); code != 0 {
		t.Fatalf("the printed defaults do not check: %s", errs)
	}
}

// TestConfigCheckSeesFilesAndGroups: what config.Load cannot see, a keys
// file that will not open or a socket group that does not exist, fails
// `config check` and makes `serve` exit 2 (no restart loop), while a keys
// file created empty by a package is fine.
func TestConfigCheckSeesFilesAndGroups(t *testing.T) {
	for _, c := range []struct {
		name, keys string
		mode       os.FileMode
		extra      string
		want       string // "" = valid
	}{
		{"open keys file", "", 0o644, "", "chmod 640"},
		{"garbage keys file", "not a key\n", 0o640, "", "line 1"},
		{"unknown socket group", "", 0o640, "socket: {group: no-such-group-relaycap}\n", "socket.group"},
		{"empty keys file", "", 0o640, "", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			sub := t.TempDir()
			keys := filepath.Join(sub, "id.keys")
			os.WriteFile(keys, []byte(c.keys), c.mode)
			os.Chmod(keys, c.mode)
			cfg := filepath.Join(sub, "relaycap.yaml")
			body := "state_dir: " + sub + "/state\nmilter: {listen: \"unix:" + sub + "/m.sock\"}\npolicy: {listen: \"unix:" + sub + "/p.sock\"}\n" +
				"id_header: {keys_file: " + keys + "}\n" + c.extra
			os.WriteFile(cfg, []byte(body), 0o644)
			_, errs, code := runCLI(t, "config", "check", "--config", cfg)
			if c.want == "" {
				if code != 0 {
					t.Fatalf("config check: exit %d, want 0:\n%s", code, errs)
				}
				return
			}
			if code != 2 || !strings.Contains(errs, c.want) {
				t.Errorf("config check: exit %d, want 2 naming %q:\n%s", code, c.want, errs)
			}
			if _, errs, code := runCLI(t, "serve", "--config", cfg); code != 2 || !strings.Contains(errs, c.want) {
				t.Errorf("serve: exit %d, want 2 naming %q:\n%s", code, c.want, errs)
			}
		})
	}
}
