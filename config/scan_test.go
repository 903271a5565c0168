package config

import (
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// accountBodies are accounts files: the usual one-line forms scanFast reads
// itself, and near misses it must leave to yaml.v3.
var accountBodies = []string{
	"alice: 5", "alice: 5 # c", "alice: 5#c", "alice: 5 \t", "alice:\t5", "alice:5", "alice : 5",
	"alice: 05", "alice: 0x1f", "alice: 0o17", "alice: 1_000", "alice: +5", "alice: -5", "alice: -0", "alice: 0",
	"alice: 5.0", "alice: 1e3", "alice: 99999999999999999999", "alice: 999999999999999999", "alice: yes",
	"alice: null", "alice: ~", "alice:", "alice: \"5\"", "alice: [1]", "alice: |\n  5\n",
	`"a@b.c": 5`, `'a@b.c': 5`, `"a\"b": 5`, `'it''s': 5`, `"a b": 5`, `"": 5`, `'': 5`, `"a:b": 5`,
	"Alice@Example.COM: 5", "null: 5", "NULL: 5", "~: 5", "true: 5", "123: 5", "a b: 5", "-a: 5", "_a: 5", ".a: 5",
	"u.x-y+z_1@ex-ample.co.uk: 7",
	"alice: {daily_limit: 5, status: suspended}", "alice: {status: terminated, daily_limit: 0}",
	"alice: {daily_limit:5}", "alice: {daily_limit: 5,status: active}", "alice: { daily_limit: 5 }",
	"alice: {daily_limit: 5, status: suspended }", "alice: {daily_limit: 5, daily_limit: 6}",
	"alice: {Daily_Limit: 5}", "alice: {daily_limit: 5, status: closed}", "alice: {daily_limit: 5} # x",
	"alice: {daily_limit: 5}x", "alice: {daily_limit: 5,}", "alice: {}", "alice: {status: null}",
	"alice: {status: suspended}", "alice: {daily_limit: -1}", "alice: {daily_limit: 5, colour: red}",
	"alice: {daily_limit: 5, status: Active}", "alice: {daily_limit: 5 # x\n}",
	"alice: {daily_limit: 5, dry_run: true}", "alice: {dry_run: false, status: suspended, daily_limit: 5}",
	"alice: {dry_run: yes}", "alice: {dry_run: True}", "alice: {dry_run: \"true\"}", "alice: {dry_run: 1}",
	"alice: {daily_limit: 5, dry_run: true, dry_run: false}", "alice: {Dry_Run: true}",
	"alice: &a 5\nbob: *a", "alice:\n  daily_limit: 3\n  status: suspended", "alice:\n  3",
	"alice: 5\nalice: 6", "alice: 5\nAlice: 6", "alice: 5\r\nbob: 6\r\n", "alice: 5\n  6",
	"# comment\nalice: 5\n\n  # indented comment\nbob: 6\n", "alice: 5\n\tbob: 6",
	"- a", "{}", "{a: 1, b: 2}", "{a: 1,\n b: 2}", "---\nalice: 5", "alice: 5\n...\n", "%YAML 1.2\n---\nalice: 5",
	"\ufeffalice: 5", "alice: 5\n bob: 6", "  alice: 5\n  bob: 6", "  alice: 5\nbob: 6",
	"a: 1\nb: 2\na: 3\nB: 4\nc: {daily_limit: 5}\nc: 6",
	"alice:\n  daily_limit: 3\n  dry_run: true", "alice: # c\n  daily_limit: 3 # x", "alice:\n  daily_limit: 3,",
	"alice:\n  daily_limit: 3\n    status: x", "alice:\n    daily_limit: 3\n  status: x", "alice:\n  daily_limit: 3\n  daily_limit: 4",
	"alice:\n  status: suspended", "alice:\n  colour: red", "alice:\n\n  daily_limit: 3\n\n  # c\n  status: terminated\nbob: 2",
	"alice:\n  daily_limit: 3#x", "alice:\n  Daily_limit: 3", "alice:\n  daily_limit:\n    3", "alice:\n  daily_limit: -3",
	"alice:\n  status: closed\n  daily_limit: 1", "alice:\n  daily_limit: 3\nalice:\n  daily_limit: 4", "\"a.b@c\":\n  daily_limit: 3",
	"alice:#x\n  daily_limit: 3", "alice:  \n  daily_limit: 3", "alice:\n  daily_limit: 3 \n  status: active  # ok",
}

// TestScanAgreesWithYAML loads every body as an accounts file and inline,
// read by scanFast and by yaml.v3 alone: the config, or the error, must be
// the same.
func TestScanAgreesWithYAML(t *testing.T) {
	isolate(t)
	fast := 0
	for _, body := range accountBodies {
		if agreesWithYAML(t, body) {
			fast++
		}
	}
	t.Logf("%d of %d bodies scanned without falling back", fast, len(accountBodies))
}

// FuzzScanAgreesWithYAML is TestScanAgreesWithYAML on any body.
func FuzzScanAgreesWithYAML(f *testing.F) {
	for _, body := range accountBodies {
		f.Add(body)
	}
	f.Fuzz(func(t *testing.T, body string) {
		isolate(t)
		agreesWithYAML(t, body)
	})
}

// agreesWithYAML checks body both ways and reports whether scanFast read
// it without falling back.
func agreesWithYAML(t *testing.T, body string) bool {
	t.Helper()
	dir := t.TempDir()
	writeFile(t, dir, "accounts.yaml", body+"\n")
	file := writeFile(t, dir, "file.yaml", "id_header: {keys_file: /k}\nquota:\n  accounts_file: accounts.yaml\n")
	indented := "    " + strings.ReplaceAll(body, "\n", "\n    ")
	inline := writeFile(t, dir, "inline.yaml", "id_header: {keys_file: /k}\nquota:\n  timezone: UTC\n  accounts:\n"+indented+"\n  history_days: 9\nlog: {level: warn}\n")
	var s accountSet
	s.source("x")
	fast := s.scanFast([]byte(body+"\n"), 1)
	for _, path := range []string{file, inline} {
		useScan = false
		want, wantErr := Load(path, nil)
		useScan = true
		got, gotErr := Load(path, nil)
		if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) {
			t.Errorf("%s of %q:\n got %v\nwant %v", filepath.Base(path), body, gotErr, wantErr)
			continue
		}
		if gotErr == nil && !reflect.DeepEqual(slices.Collect(got.Quota.Accounts.All()), slices.Collect(want.Quota.Accounts.All())) {
			t.Errorf("%s of %q:\n got %v\nwant %v", filepath.Base(path), body,
				slices.Collect(got.Quota.Accounts.All()), slices.Collect(want.Quota.Accounts.All()))
		}
		if gotErr == nil {
			same(t, got, want)
		}
	}
	return fast
}

// TestDuplicateDeepInAMillion: a million accounts load, and a name given
// again at line 700,001 is reported with both lines.
func TestDuplicateDeepInAMillion(t *testing.T) {
	isolate(t)
	var b strings.Builder
	for i := 1; i <= 1000000; i++ {
		name := fmt.Sprintf("user%07d@example.com", i)
		if i == 700001 {
			name = "user0000042@example.com"
		}
		if i%10 == 0 {
			fmt.Fprintf(&b, "%q: {daily_limit: %d, status: suspended}\n", name, i%1000)
		} else {
			fmt.Fprintf(&b, "%s: %d\n", name, i%1000)
		}
	}
	dir := t.TempDir()
	writeFile(t, dir, "accounts.yaml", b.String())
	path := writeFile(t, dir, "c.yaml", "quota: {accounts_file: accounts.yaml}\n")
	start := time.Now()
	_, err := Load(path, nil)
	t.Logf("loaded in %v", time.Since(start))
	want := `accounts.yaml line 700001: account "user0000042@example.com" is already defined at line 42`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("err = %v, want %q", err, want)
	}
	if n := strings.Count(err.Error(), "\n"); n != 0 {
		t.Errorf("%d more problems than the duplicate:\n%v", n, err)
	}
}

func TestCutInlineAccounts(t *testing.T) {
	for _, tc := range []struct {
		text string
		ok   bool
	}{
		{"quota:\n  accounts:\n    a: 1\n", true},
		{"quota: # q\n  timezone: UTC\n  accounts: # the customers\n    a: 1\n\n  history_days: 3\nlog: {}\n", true},
		{"quota:\n  accounts: {a: 1}\n", false},
		{"quota: {accounts: {a: 1}}\n", false},
		{"quota:\n  accounts:\n    a: 1\nquota:\n  accounts:\n    b: 1\n", false},
		{"---\nquota:\n  accounts:\n    a: 1\n", false},
		{"log: {}\n", false},
	} {
		rest, blk, ok := cutInlineAccounts([]byte(tc.text))
		if ok != tc.ok {
			t.Errorf("%q: ok = %v", tc.text, ok)
			continue
		}
		if ok && (strings.Count(string(rest), "\n") != strings.Count(tc.text, "\n") || strings.TrimSpace(string(blk.lines)) != "a: 1") {
			t.Errorf("%q: rest %q, block %q", tc.text, rest, blk.lines)
		}
	}
}
