package daemon

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	gomilter "github.com/d--j/go-milter"

	"github.com/relaycap/relaycap/config"
	"github.com/relaycap/relaycap/idheader"
)

// applyMods applies header modifications the way Postfix's cleanup does to
// the queue file, whose first header is Postfix's own Received: (not shown
// to the milter): a change with an empty value removes the n-th field of
// that name; an insert at n goes after the n-th field of all.
func applyMods(t *testing.T, headers [][2]string, mods []gomilter.ModifyAction) [][2]string {
	t.Helper()
	out := append([][2]string{{"Received", "from client.example by relay.test"}}, headers...)
	for _, m := range mods {
		switch m.Type {
		case gomilter.ActionChangeHeader:
			seen := 0
			for i, h := range out {
				if strings.EqualFold(h[0], m.HeaderName) {
					if seen++; seen == int(m.HeaderIndex) {
						if m.HeaderValue == "" {
							out = slices.Delete(out, i, i+1)
						} else {
							out[i][1] = m.HeaderValue
						}
						break
					}
				}
			}
		case gomilter.ActionInsertHeader:
			i := min(int(m.HeaderIndex), len(out))
			out = slices.Insert(out, i, [2]string{m.HeaderName, m.HeaderValue})
		case gomilter.ActionAddHeader:
			out = append(out, [2]string{m.HeaderName, m.HeaderValue})
		default:
			t.Fatalf("unexpected modification %v", m)
		}
	}
	return out
}

func TestIDHeaderReplacesForgeries(t *testing.T) {
	td := startDaemon(t, "quota: {accounts: {alice@example.com: 1000}}\n")
	keys, err := idheader.LoadKeyring(filepath.Join(td.dir, "id.keys"))
	if err != nil {
		t.Fatal(err)
	}
	many := func(n int) [][2]string {
		var hs [][2]string
		for i := range n {
			hs = append(hs, [2]string{"X-Filler", fmt.Sprint(i)})
		}
		return hs
	}
	forged := [2]string{"X-Relay-ID", "forged-token"}
	forgedLower := [2]string{"x-relay-id", "another forgery"}
	forgedExtra := [2]string{"X-REPORT-ABUSE-TO", "spoof@evil.example"}
	msgID := [2]string{"Message-ID", "<m-42@example.org>"}
	cases := map[string][][2]string{
		"at the top":       append([][2]string{forged, msgID}, plainHeaders[:2]...),
		"in the middle":    {{"From", "a@example.org"}, forged, msgID, forgedExtra, {"To", "b@example.net"}, forgedLower},
		"after 600 others": append(append(many(600), msgID), forged, forgedLower, forgedExtra),
		"none":             {{"From", "a@example.org"}, msgID},
	}
	var tokens []string
	for name, headers := range cases {
		s := td.milterSession(t)
		s.mail("alice@example.com")
		s.rcpts(3)
		mods, act := s.data(headers)
		if act.Type != gomilter.ActionAccept {
			t.Fatalf("%s: %v", name, act)
		}
		final := applyMods(t, headers, mods)
		if final[0][0] != "Received" || final[1][0] != "X-Relay-ID" || final[2][0] != "X-Report-Abuse-To" {
			t.Fatalf("%s: token not right below Received: %v", name, final[:3])
		}
		var ids, extras int
		for _, h := range final {
			switch strings.ToLower(h[0]) {
			case "x-relay-id":
				ids++
			case "x-report-abuse-to":
				extras++
				if h[1] != "abuse@example.net" {
					t.Errorf("%s: extra header %q survived", name, h[1])
				}
			}
		}
		if ids != 1 || extras != 1 {
			t.Fatalf("%s: %d id headers and %d extras, want 1 and 1", name, ids, extras)
		}
		f, err := keys.Open(final[1][1])
		if err != nil {
			t.Fatalf("%s: token does not open: %v", name, err)
		}
		if f.Account != "alice@example.com" || f.QueueID != "4QUEUEID" || f.Recipients != 3 || f.ClientAddr != "192.0.2.7" {
			t.Fatalf("%s: token names %+v", name, f)
		}
		if !f.Time.Equal(td.clock.now().Truncate(time.Second)) || !f.BindsMessageID("<m-42@example.org>") {
			t.Fatalf("%s: time %v or Message-ID binding wrong", name, f.Time)
		}
		tokens = append(tokens, final[1][1])
	}
	slices.Sort(tokens)
	if len(slices.Compact(tokens)) != len(cases) {
		t.Fatal("two messages of one account carry the same token")
	}
}

func TestUnauthenticatedMailLosesForgeriesButGetsNoToken(t *testing.T) {
	td := startDaemon(t, "")
	s := td.milterSession(t)
	s.mail("")
	s.rcpts(1)
	headers := [][2]string{{"X-Relay-ID", "forged"}, {"From", "a@example.org"}, {"X-Report-Abuse-To", "x"}}
	mods, act := s.data(headers)
	if act.Type != gomilter.ActionAccept {
		t.Fatal(act)
	}
	final := applyMods(t, headers, mods)
	if len(final) != 2 || final[1][0] != "From" {
		t.Fatalf("headers after the milter: %v", final)
	}
}

// TestNoKeysDefersAndCountsNothing: with no keys file, or one a package
// created empty, the daemon starts, defers authenticated mail with 451
// 4.3.0 and counts nothing.
func TestNoKeysDefersAndCountsNothing(t *testing.T) {
	for _, c := range []struct {
		name  string
		unset func(path string) error
	}{
		{"missing", removeFile},
		{"empty", func(path string) error { return os.WriteFile(path, nil, 0o640) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			td := startDaemon(t, "quota: {accounts: {alice: 5}}\n")
			td.stop()
			if err := c.unset(filepath.Join(td.dir, "id.keys")); err != nil {
				t.Fatal(err)
			}
			td.start(t)
			s := td.milterSession(t)
			s.mail("alice")
			s.rcpts(2)
			_, act := s.data(plainHeaders)
			if act.SMTPCode != 451 || !strings.HasPrefix(act.SMTPReply, "451 4.3.0") {
				t.Fatalf("no keys: %v, want 451 4.3.0", act)
			}
			if d := td.check(t, "alice"); d.Used != 0 || d.Reserved != 0 {
				t.Fatalf("a deferred message was counted: %+v", d)
			}
			wantDecision(t, td.logs.String(), "alice", map[string]string{"result": "tempfail", "accepted": "0", "refused": "2"})
		})
	}
}

func TestKeysOpenToOthersStopTheStart(t *testing.T) {
	td := startDaemon(t, "")
	td.stop()
	keys := filepath.Join(td.dir, "id.keys")
	if err := os.Chmod(keys, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(td.cfgPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Start(cfg, Options{})
	if !errors.Is(err, idheader.ErrPermissions) || !strings.Contains(err.Error(), "chmod 640") {
		t.Fatalf("start with a keys file of mode 0644: %v", err)
	}
}

func TestReloadRotatesKeys(t *testing.T) {
	td := startDaemon(t, "quota: {accounts: {alice: 10}}\n")
	keysFile := filepath.Join(td.dir, "id.keys")
	token := func() string {
		s := td.milterSession(t)
		s.mail("alice")
		s.rcpts(1)
		mods, _ := s.data(plainHeaders)
		return applyMods(t, plainHeaders, mods)[1][1]
	}
	before := token()
	newKey, err := idheader.Keygen(keysFile, nil)
	if err != nil {
		t.Fatal(err)
	}
	newID := newKey.ID
	td.reload(t, "quota: {accounts: {alice: 10}}\n")
	after := token()
	keys, err := idheader.LoadKeyring(keysFile)
	if err != nil {
		t.Fatal(err)
	}
	fb, errB := keys.Open(before)
	fa, errA := keys.Open(after)
	if errB != nil || errA != nil {
		t.Fatalf("tokens must open after rotation: %v, %v", errB, errA)
	}
	if fa.KeyID != newID || fb.KeyID == newID {
		t.Fatalf("key ids: before %s, after %s; the new key is %s", fb.KeyID, fa.KeyID, newID)
	}
}

// TestReloadWithoutKeysFileKeepsRunningKeys: a keys file that is missing
// at a SIGHUP (a deploy, a typo) must not turn every message into a 451.
func TestReloadWithoutKeysFileKeepsRunningKeys(t *testing.T) {
	td := startDaemon(t, "quota: {accounts: {alice: 10}}\n")
	if err := os.Rename(filepath.Join(td.dir, "id.keys"), filepath.Join(td.dir, "id.keys.moved")); err != nil {
		t.Fatal(err)
	}
	writeConfig(t, td.dir, "quota: {accounts: {alice: 20}}\n")
	cfg, err := config.Load(td.cfgPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := td.Reload(cfg); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("reload without the keys file: %v, want an error", err)
	}
	s := td.milterSession(t)
	s.mail("alice")
	s.rcpts(1)
	if _, act := s.data(plainHeaders); act.Type != gomilter.ActionAccept {
		t.Fatalf("after the failed reload: %v, want the running keys to seal", act)
	}
	if d := td.check(t, "alice"); d.Limit != 10 {
		t.Fatalf("the failed reload applied the new limit %d", d.Limit)
	}
}

// TestLongLoginStillGetsAToken: a legal 200-byte login does not fit the
// token whole; it is cut and marked rather than deferred forever.
func TestLongLoginStillGetsAToken(t *testing.T) {
	td := startDaemon(t, "quota: {default_daily_limit: 5}\n")
	login := strings.Repeat("ü", 90) + "@" + strings.Repeat("x", 8) + ".example.com"
	s := td.milterSession(t)
	s.mail(login)
	s.rcpts(1)
	mods, act := s.data(plainHeaders)
	if act.Type != gomilter.ActionAccept {
		t.Fatalf("long login: %v", act)
	}
	keys, _ := idheader.LoadKeyring(filepath.Join(td.dir, "id.keys"))
	f, err := keys.Open(applyMods(t, plainHeaders, mods)[1][1])
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Repeat("ü", 32) + "…"
	if f.Account != want || f.QueueID != "4QUEUEID" {
		t.Fatalf("token names %q (queue id %s), want %q", f.Account, f.QueueID, want)
	}
}

// TestTheFirstMessageIDIsSealed: a message with two Message-ID fields (RFC
// 5322 allows one; a client may send more) is bound to the first, the one
// readers show; a later one must not win. The next message of the same
// connection is bound to its own.
func TestTheFirstMessageIDIsSealed(t *testing.T) {
	td := startDaemon(t, "quota: {accounts: {alice: 10}}\n")
	keys, err := idheader.LoadKeyring(filepath.Join(td.dir, "id.keys"))
	if err != nil {
		t.Fatal(err)
	}
	s := td.milterSession(t)
	for _, m := range []struct {
		headers    [][2]string
		bound, not string
	}{
		{[][2]string{{"Message-ID", "<first@example.org>"}, {"From", "a@example.org"}, {"Message-ID", "<second@example.org>"}},
			"<first@example.org>", "<second@example.org>"},
		{[][2]string{{"From", "a@example.org"}, {"Message-ID", "<next@example.org>"}},
			"<next@example.org>", "<first@example.org>"},
	} {
		s.mail("alice")
		s.rcpts(1)
		mods, act := s.data(m.headers)
		if act.Type != gomilter.ActionAccept {
			t.Fatalf("%v: %v", m.headers, act)
		}
		f, err := keys.Open(applyMods(t, m.headers, mods)[1][1])
		if err != nil {
			t.Fatal(err)
		}
		if !f.BindsMessageID(m.bound) || f.BindsMessageID(m.not) {
			t.Errorf("%v: token bound to %s: %v, to %s: %v; want only %s",
				m.headers, m.bound, f.BindsMessageID(m.bound), m.not, f.BindsMessageID(m.not), m.bound)
		}
	}
}
