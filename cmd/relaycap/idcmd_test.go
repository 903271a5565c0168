package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/relaycap/relaycap/config"
	"github.com/relaycap/relaycap/idheader"
)

const fixtures = "../../idheader/testdata/"

// runID executes "relaycap id ARGS" in process, configured as main
// configures the root, and returns the exit code main would use.
func runID(t *testing.T, stdin string, args ...string) (stdout, stderr string, code int, err error) {
	t.Helper()
	root := &cobra.Command{Use: "relaycap", SilenceUsage: true, SilenceErrors: true}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError(err) })
	root.AddCommand(newIDCommand())
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetIn(strings.NewReader(stdin))
	root.SetArgs(append([]string{"id"}, args...))
	err = root.Execute()
	if err != nil {
		e, ok := err.(interface{ ExitCode() int }) // as main checks it
		if !ok {
			t.Fatalf("error without an exit code: %v", err)
		}
		code = e.ExitCode()
		if strings.Contains(err.Error(), "\n") {
			t.Errorf("reason is not one line: %q", err)
		}
	}
	return out.String(), errOut.String(), code, err
}

// keysAndToken creates a keys file with the CLI and seals a token with it.
func keysAndToken(t *testing.T) (keys, token string) {
	t.Helper()
	keys = filepath.Join(t.TempDir(), "id.keys")
	out, _, code, err := runID(t, "", "keygen", "--keys-file", keys)
	if code != 0 || !strings.Contains(out, "created "+keys) || !strings.Contains(out, "key id 1") {
		t.Fatalf("keygen: %d %v %q", code, err, out)
	}
	out, _, code, err = runID(t, "", "keygen", "--keys-file", keys)
	if code != 0 || !strings.Contains(out, "rotated "+keys) || !strings.Contains(out, "key id 2") {
		t.Fatalf("rotate: %d %v %q", code, err, out)
	}
	ring, err := idheader.LoadKeyring(keys)
	if err != nil {
		t.Fatal(err)
	}
	token, err = ring.Seal(idheader.Fields{
		Account: "alice@example.com", Time: time.Date(2026, 7, 4, 16, 30, 0, 0, time.UTC),
		QueueID: "4Xq1bD2kVhz9", ClientAddr: "2001:db8::7", Recipients: 5,
	}, "<m1@example.com>")
	if err != nil {
		t.Fatal(err)
	}
	return keys, token
}

func TestIDDecodeToken(t *testing.T) {
	keys, token := keysAndToken(t)
	out, _, code, err := runID(t, "", "decode", "--keys-file", keys, "--timezone", "America/New_York", token)
	if code != 0 {
		t.Fatalf("exit %d: %v", code, err)
	}
	for _, want := range []string{"alice@example.com", "2026-07-04 16:30:00 UTC", "2026-07-04 12:30:00 EDT (America/New_York)",
		"4Xq1bD2kVhz9", "2001:db8::7", "recipients:  5", "key id:      2"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// A whole header line, pasted folded, decodes too.
	pasted := "X-Relay-ID: " + token[:80] + "\n\t" + token[80:]
	if out, _, code, err := runID(t, "", "decode", "--keys-file", keys, pasted); code != 0 || !strings.Contains(out, "alice@") {
		t.Errorf("pasted header: %d %v", code, err)
	}
}

func TestIDDecodeJSON(t *testing.T) {
	keys, token := keysAndToken(t)
	out, _, code, err := runID(t, "", "decode", "--keys-file", keys, "--json", "--timezone", "UTC", token)
	if code != 0 {
		t.Fatalf("exit %d: %v", code, err)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if got["account"] != "alice@example.com" || got["time"] != "2026-07-04T16:30:00Z" || got["recipients"] != 5.0 ||
		got["key_id"] != "2" || got["client_addr"] != "2001:db8::7" {
		t.Errorf("%v", got)
	}
}

func TestIDDecodeFailures(t *testing.T) {
	keys, token := keysAndToken(t)
	sub := "A"
	if token[50] == 'A' {
		sub = "B"
	}
	tampered := token[:50] + sub + token[51:]
	otherKeys := filepath.Join(t.TempDir(), "other.keys")
	if _, err := idheader.Keygen(otherKeys, nil); err != nil {
		t.Fatal(err)
	}
	openKeys := filepath.Join(t.TempDir(), "open.keys")
	data, _ := os.ReadFile(keys)
	os.WriteFile(openKeys, data, 0o644)
	os.Chmod(openKeys, 0o644)

	for _, c := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"tampered", []string{"decode", "--keys-file", keys, tampered}, 1, "forged"},
		{"truncated", []string{"decode", "--keys-file", keys, token[:150]}, 1, "malformed"},
		{"unknown key", []string{"decode", "--keys-file", otherKeys, token}, 1, "unknown key"},
		{"missing token", []string{"decode", "--keys-file", keys}, 2, "want one TOKEN"},
		{"two tokens", []string{"decode", "--keys-file", keys, token, token}, 2, "got 2 arguments"},
		{"token and message", []string{"decode", "--keys-file", keys, "--message", "x.eml", token}, 2, "not both"},
		{"bad flag", []string{"decode", "--keys", keys, token}, 2, "unknown flag"},
		{"bad zone", []string{"decode", "--keys-file", keys, "--timezone", "Mars/Olympus", token}, 2, "--timezone"},
		{"no keys file", []string{"decode", "--keys-file", keys + ".missing", token}, 2, "no such file"},
		{"keys file open to others", []string{"decode", "--keys-file", openKeys, token}, 2, "chmod 640"},
		{"unreadable message", []string{"decode", "--keys-file", keys, "--message", keys + ".eml"}, 2, "no such file"},
		{"keygen argument", []string{"keygen", "--keys-file", keys, "extra"}, 2, "takes no arguments"},
		{"keygen on open file", []string{"keygen", "--keys-file", openKeys}, 1, "chmod 640"},
		{"no subcommand", nil, 2, "missing subcommand"},
		{"unknown subcommand", []string{"encode"}, 2, `unknown command "encode"`},
	} {
		_, _, code, err := runID(t, "", c.args...)
		if code != c.code || err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: exit %d, %v; want %d and %q", c.name, code, err, c.code, c.want)
		}
	}
}

// fixtureKeys copies the fixtures' keys file to a private file.
func fixtureKeys(t *testing.T) string {
	data, err := os.ReadFile(fixtures + "test.keys")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "id.keys")
	if err := os.WriteFile(path, data, 0o640); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestIDDecodeMessage(t *testing.T) {
	keys := fixtureKeys(t)
	for _, c := range []struct {
		file, want string
	}{
		{"plain.eml", "<20260302140305.GA1234@mail.example.com> (matches"},
		{"forwarded.eml", "in a forwarded or reported message\naccount:     bob.smith@customer-two.example"},
		{"arf.eml", "newsletter@shop.example"},
		{"arf-headers.eml", "account:     carol"},
		{"copied.eml", "<forged-77@elsewhere.example> (DOES NOT MATCH"},
	} {
		out, _, code, err := runID(t, "", "decode", "--keys-file", keys, "--message", fixtures+c.file)
		if code != 0 || !strings.Contains(out, c.want) {
			t.Errorf("%s: exit %d, %v; output lacks %q:\n%s", c.file, code, err, c.want, out)
		}
	}
	arf, _ := os.ReadFile(fixtures + "arf.eml")
	out, _, code, err := runID(t, string(arf), "decode", "--keys-file", keys, "--message", "-", "--json")
	var got []map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &got) != nil || len(got) != 1 ||
		got[0]["account"] != "newsletter@shop.example" || got[0]["message_id_matches"] != true || got[0]["nested"] != true {
		t.Errorf("stdin, JSON: exit %d, %v:\n%s", code, err, out)
	}
	_, _, code, err = runID(t, "Subject: hi\n\nno header\n", "decode", "--keys-file", keys, "--message", "-")
	if code != 1 || !strings.Contains(err.Error(), "no X-Relay-ID header in standard input") {
		t.Errorf("no header: exit %d, %v", code, err)
	}
	_, _, code, err = runID(t, "X-Relay-ID: AQAB\n\n", "decode", "--keys-file", keys, "--message", "-")
	if code != 1 || !strings.Contains(err.Error(), "malformed") {
		t.Errorf("bad header: exit %d, %v", code, err)
	}
}

// TestIDDecodeTakesKeysAndZoneFromConfig: on the relay, the daemon's config
// names the keys file and the zone, so no flag is needed.
func TestIDDecodeTakesKeysAndZoneFromConfig(t *testing.T) {
	keys, token := keysAndToken(t)
	cfg := filepath.Join(t.TempDir(), "relaycap.yaml")
	body := "id_header: {keys_file: " + keys + "}\nquota: {timezone: Europe/Berlin}\n"
	if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	out, _, code, err := runID(t, "", "decode", "--config", cfg, token)
	if code != 0 || !strings.Contains(out, "2026-07-04 18:30:00 CEST (Europe/Berlin)") {
		t.Fatalf("exit %d (%v):\n%s", code, err, out)
	}
}

// TestIDDecodeSurvivesABrokenDaemonConfig: the daemon's config, read only
// because no --config was given, may be broken or unreadable for the abuse
// desk; decode warns and goes on with its flags.
func TestIDDecodeSurvivesABrokenDaemonConfig(t *testing.T) {
	keys, token := keysAndToken(t)
	broken := filepath.Join(t.TempDir(), "relaycap.yaml")
	if err := os.WriteFile(broken, []byte("bogus: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	old := daemonConfig
	daemonConfig = broken
	t.Cleanup(func() { daemonConfig = old })
	for _, args := range [][]string{
		{"decode", "--keys-file", keys, "--timezone", "UTC", "--header", "X-Relay-ID", token},
		{"decode", "--keys-file", keys, token},
	} {
		out, errs, code, err := runID(t, "", args...)
		if code != 0 || !strings.Contains(out, "alice@example.com") {
			t.Errorf("%v: exit %d (%v):\n%s%s", args, code, err, out, errs)
		}
		// With every flag given the config is not read at all; otherwise
		// decode says it is not using it.
		warned := strings.Contains(errs, "not using "+broken) && strings.Contains(errs, "bogus")
		if all := len(args) == 8; warned == all {
			t.Errorf("%v: warning shown %v, want %v:\n%s", args, warned, !all, errs)
		}
	}
	if _, _, code, _ := runID(t, "", "decode", "--config", broken, "--keys-file", keys, token); code != 2 {
		t.Errorf("an explicit broken --config: exit %d, want 2", code)
	}
}

// TestIDFlagsDefaultToTheConfigDefaults: without a config file, `id`
// looks where the daemon would: the defaults table, not a copy of it.
func TestIDFlagsDefaultToTheConfigDefaults(t *testing.T) {
	def := config.Defaults()
	keygen, decode := newIDKeygenCommand(), newIDDecodeCommand()
	for _, c := range []struct {
		cmd        *cobra.Command
		flag, want string
	}{
		{keygen, "keys-file", def.IDHeader.KeysFile},
		{decode, "keys-file", def.IDHeader.KeysFile},
		{decode, "timezone", def.Quota.Timezone},
		{decode, "header", def.IDHeader.Name},
	} {
		if got := c.cmd.Flags().Lookup(c.flag).DefValue; got != c.want {
			t.Errorf("%s --%s defaults to %q, config's default is %q", c.cmd.Name(), c.flag, got, c.want)
		}
	}
}

// TestKeygenSaysWhatItDid: the message follows what Keygen did to the
// file: created, filled (a file a package created empty) or rotated.
func TestKeygenSaysWhatItDid(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.keys")
	if err := os.WriteFile(empty, nil, 0o640); err != nil {
		t.Fatal(err)
	}
	fresh := filepath.Join(dir, "new.keys")
	for _, c := range []struct{ path, want string }{
		{fresh, "created " + fresh + " (mode 0640) with key id 1"},
		{fresh, "rotated " + fresh + ": new sealing key id 2"},
		{empty, "wrote key id 1 into " + empty + ", which held no key"},
	} {
		out, _, code, err := runID(t, "", "keygen", "--keys-file", c.path)
		if code != 0 || !strings.Contains(out, c.want) {
			t.Errorf("keygen %s: exit %d, %v, %q; want %q", c.path, code, err, out, c.want)
		}
	}
}

// TestKeygenGroupHintOnlyWhereItApplies: the chgrp hint names the
// daemon's group only where that group exists and does not own the new
// file yet; `make run` on a developer's machine gets none.
func TestKeygenGroupHintOnlyWhereItApplies(t *testing.T) {
	own, err := user.LookupGroupId(strconv.Itoa(os.Getgid()))
	if err != nil {
		t.Fatal(err)
	}
	other := "nogroup" // Debian's; not the group of files we create
	if _, err := user.LookupGroup(other); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		group string
		hint  bool
	}{
		{"no-such-group-relaycap", false},
		{own.Name, false},
		{other, true},
	} {
		prev := daemonGroup
		daemonGroup = c.group
		keys := filepath.Join(t.TempDir(), "id.keys")
		out, _, code, err := runID(t, "", "keygen", "--keys-file", keys)
		daemonGroup = prev
		if code != 0 {
			t.Fatalf("keygen: exit %d, %v", code, err)
		}
		if got := strings.Contains(out, "chgrp "+c.group+" "+keys); got != c.hint {
			t.Errorf("daemon group %s: hint %v, want %v:\n%s", c.group, got, c.hint, out)
		}
	}
}

// TestDecodeMessageTakesAReaderAndAWriter: the abuse-desk logic needs no
// command: a message in, the report out.
func TestDecodeMessageTakesAReaderAndAWriter(t *testing.T) {
	ring, err := idheader.LoadKeyring(fixtureKeys(t))
	if err != nil {
		t.Fatal(err)
	}
	msg, err := os.ReadFile(fixtures + "plain.eml")
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	err = decodeMessage(&out, bytes.NewReader(msg), "plain.eml", ring, decodeOptions{header: "X-Relay-ID"}, time.UTC)
	if err != nil || !strings.Contains(out.String(), "<20260302140305.GA1234@mail.example.com> (matches") {
		t.Fatalf("decodeMessage: %v\n%s", err, out.String())
	}
}
