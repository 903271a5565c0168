package idheader

import (
	"os"
	"strings"
	"testing"
	"time"
)

func TestFindToken(t *testing.T) {
	ring := fixtureRing(t)
	type want struct {
		account, messageID, keyID string
		nested, binds             bool
		at                        time.Time
	}
	for _, c := range []struct {
		file, header string
		want         []want
	}{
		{"plain.eml", "X-Relay-ID", []want{{"alice@example.com", "<20260302140305.GA1234@mail.example.com>", "2", false, true,
			time.Date(2026, 3, 2, 14, 3, 5, 0, time.UTC)}}},
		// The token from plain.eml pasted into a message with another Message-ID.
		{"copied.eml", "x-relay-id", []want{{"alice@example.com", "<forged-77@elsewhere.example>", "2", false, false,
			time.Date(2026, 3, 2, 14, 3, 5, 0, time.UTC)}}},
		// Folded over three lines inside a forward; sealed with the older key.
		{"forwarded.eml", "X-Relay-ID", []want{{"bob.smith@customer-two.example", "<CAF=abc123XyZ@mail.example.net>", "1", true, true,
			time.Date(2026, 2, 27, 23, 41, 0, 0, time.UTC)}}},
		{"arf.eml", "X-Relay-ID", []want{{"newsletter@shop.example", "<b1946ac92492d2347c6235b4d2611184@shop.example>", "2", true, true,
			time.Date(2026, 3, 1, 9, 0, 12, 0, time.UTC)}}},
		{"arf-headers.eml", "X-Relay-ID", []want{{"carol", "<7d1e2f@laptop.carol.example>", "2", true, true,
			time.Date(2026, 3, 3, 1, 15, 59, 0, time.UTC)}}},
		{"arf.eml", "X-Other", nil},
	} {
		t.Run(c.file+"/"+c.header, func(t *testing.T) {
			msg, err := os.Open("testdata/" + c.file)
			if err != nil {
				t.Fatal(err)
			}
			defer msg.Close()
			found, err := FindToken(msg, c.header)
			if err != nil {
				t.Fatal(err)
			}
			if len(found) != len(c.want) {
				t.Fatalf("found %+v, want %d", found, len(c.want))
			}
			for i, w := range c.want {
				fd := found[i]
				f, err := ring.Open(fd.Token)
				if err != nil {
					t.Fatalf("%q: %v", fd.Token, err)
				}
				if f.Account != w.account || fd.MessageID != w.messageID || f.KeyID != w.keyID ||
					fd.Nested != w.nested || f.BindsMessageID(fd.MessageID) != w.binds || !f.Time.Equal(w.at) {
					t.Errorf("found %+v, opened %+v; want %+v", fd, f, w)
				}
			}
		})
	}
}

func TestFindTokenEdges(t *testing.T) {
	plain, _ := os.ReadFile("testdata/plain.eml")
	fwd, _ := os.ReadFile("testdata/forwarded.eml")
	for _, c := range []struct {
		name, msg string
		n         int
	}{
		{"mbox From line", "From alice@example.com Mon Mar  2 14:03:05 2026\n" + string(plain), 1},
		{"CRLF", strings.ReplaceAll(string(plain), "\n", "\r\n"), 1},
		{"headers only, no body", "X-Relay-ID: abc\nMessage-ID: <m@x>", 1},
		{"two headers", "X-Relay-ID: a\nX-Relay-ID: b\n\nbody\n", 2},
		// The complainer's own message went through us, and carries the forward.
		{"outer and nested", "X-Relay-ID: outer\n" + string(fwd), 2},
		{"truncated forward", string(fwd[:strings.Index(string(fwd), "Buy now")]), 1},
		{"no boundary", "Content-Type: multipart/mixed\n\n--x\n\n", 0},
		{"bad content type", "Content-Type: ;;;\n\nX-Relay-ID: no\n", 0},
	} {
		found, err := FindToken(strings.NewReader(c.msg), "X-Relay-ID")
		if err != nil || len(found) != c.n {
			t.Errorf("%s: %+v, %v; want %d found", c.name, found, err, c.n)
		}
	}
	if _, err := FindToken(strings.NewReader(" leading space\n\n"), "X-Relay-ID"); err == nil {
		t.Error("no error for an unreadable header")
	}
}

// TestFindTokenDepth: a message nested deeper than maxDepth is not followed.
func TestFindTokenDepth(t *testing.T) {
	msg := "X-Relay-ID: inner\n\nbody\n"
	for range 20 {
		msg = "Content-Type: message/rfc822\n\n" + msg
	}
	found, err := FindToken(strings.NewReader(msg), "X-Relay-ID")
	if err != nil || len(found) != 0 {
		t.Errorf("%+v %v", found, err)
	}
}
