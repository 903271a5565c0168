package idheader

import (
	"crypto/cipher"
	"encoding/base64"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
)

func TestRoundTrip(t *testing.T) {
	k := testRing(t, 7, 3)
	for _, addr := range []string{
		"203.0.113.7", "2001:db8:85a3::8a2e:370:7334", "::ffff:192.0.2.1", "::1",
		"unknown", "", "2001:DB8::1", "fe80::1%eth0", "IPv6:2001:db8::1",
	} {
		want := sampleFields()
		want.ClientAddr = addr
		want.Time = time.Date(2026, 3, 2, 9, 3, 5, 999_999_999, time.FixedZone("EST", -5*3600))
		tok := mustSeal(t, k, want, " <20260302140305.GA1234@mail.example.com> ")
		got, err := k.Open(tok)
		if err != nil {
			t.Fatalf("%q: %v", addr, err)
		}
		want.Time = want.Time.Truncate(time.Second)
		if err := sameFacts(got, want); err != nil {
			t.Errorf("%q: %v", addr, err)
		}
		if got.Time.Location() != time.UTC {
			t.Errorf("time in %v, want UTC", got.Time.Location())
		}
		if got.KeyID != "7" {
			t.Errorf("KeyID %q, want 7", got.KeyID)
		}
		if !got.BindsMessageID("<20260302140305.GA1234@mail.example.com>") ||
			!got.BindsMessageID("20260302140305.GA1234@mail.example.com") {
			t.Errorf("does not bind its own Message-ID")
		}
		if got.BindsMessageID("<20260302140305.GA1235@mail.example.com>") || got.BindsMessageID("") {
			t.Errorf("binds another Message-ID")
		}
	}
}

func TestTokenLayout(t *testing.T) {
	tok := mustSeal(t, testRing(t, 258), sampleFields(), "<a@b>")
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		t.Fatal(err)
	}
	if len(tok) != TokenLen || len(raw) != 150 || TokenLen != 200 {
		t.Fatalf("token %d chars, %d bytes; TokenLen %d", len(tok), len(raw), TokenLen)
	}
	if raw[0] != 1 || raw[1] != 1 || raw[2] != 2 { // version 1, key id 258
		t.Errorf("clear header % x, want 01 01 02", raw[:3])
	}
	if strings.Contains(tok, "alice") {
		t.Errorf("account in clear")
	}
}

// TestTamperEveryCharacter replaces each character with every other
// base64url character (and a few that are not): none may open.
func TestTamperEveryCharacter(t *testing.T) {
	k := testRing(t, 1)
	tok := mustSeal(t, k, sampleFields(), "<a@b>")
	const subst = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_+/=. \n\r\x00é"
	tried := 0
	for i := range len(tok) {
		for _, c := range subst {
			if byte(c) == tok[i] {
				continue
			}
			bad := tok[:i] + string(c) + tok[i+1:]
			_, err := k.Open(bad)
			if err == nil {
				t.Fatalf("opened with %q at %d", c, i)
			}
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnknownKey) && !errors.Is(err, ErrForged) {
				t.Fatalf("unclassified error %v", err)
			}
			tried++
		}
	}
	t.Logf("%d altered tokens refused", tried)
	for _, bad := range []string{tok[1:], tok[:len(tok)-1], tok + "A", "A" + tok, tok[:100] + "\n" + tok[100:]} {
		if _, err := k.Open(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("length %d: %v, want ErrMalformed", len(bad), err)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	k := testRing(t, 1)
	tok := mustSeal(t, k, sampleFields(), "<a@b>")
	raw, _ := b64.DecodeString(tok)
	enc := func(f func([]byte)) string {
		b := append([]byte(nil), raw...)
		f(b)
		return b64.EncodeToString(b)
	}
	for _, c := range []struct {
		name, tok string
		want      error
	}{
		{"empty", "", ErrMalformed},
		{"short", "AQAB", ErrMalformed},
		{"not base64", strings.Repeat("*", TokenLen), ErrMalformed},
		{"version 2", enc(func(b []byte) { b[0] = 2 }), ErrMalformed},
		{"other key id", enc(func(b []byte) { b[2] = 9 }), ErrUnknownKey},
		{"flipped tag bit", enc(func(b []byte) { b[len(b)-1] ^= 1 }), ErrForged},
		{"flipped nonce bit", enc(func(b []byte) { b[3] ^= 0x80 }), ErrForged},
	} {
		if _, err := k.Open(c.tok); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	if _, err := k.Open(" \t" + tok + "\r\n"); err != nil {
		t.Errorf("surrounding space: %v", err)
	}
}

func TestUnknownAndForeignKeys(t *testing.T) {
	tok := mustSeal(t, testRing(t, 1), sampleFields(), "<a@b>")
	if _, err := testRing(t, 2).Open(tok); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("ring without key 1: %v, want ErrUnknownKey", err)
	}
	// Same id, different key: someone else's relay, or a guessed key.
	var other Keyring
	other.keys = []key{{id: 1, aead: testRing(t, 2).keys[0].aead}}
	other.byID = map[uint16]cipher.AEAD{1: other.keys[0].aead}
	if _, err := other.Open(tok); !errors.Is(err, ErrForged) {
		t.Errorf("different key with id 1: %v, want ErrForged", err)
	}
}

func TestSealsDiffer(t *testing.T) {
	k := testRing(t, 1)
	a := mustSeal(t, k, sampleFields(), "<a@b>")
	b := mustSeal(t, k, sampleFields(), "<a@b>")
	if a == b {
		t.Fatal("two seals of the same fields are equal: nonce reused")
	}
}

func TestLengthHidesAccount(t *testing.T) {
	k := testRing(t, 65535)
	long := Fields{
		Account:    strings.Repeat("x", 52) + "@example.com", // 64 characters
		Time:       time.Date(2500, 1, 1, 0, 0, 0, 0, time.UTC),
		QueueID:    "4XqBZ63xr7z5sTmKw8pQ", // 20, longer than Postfix's long ids
		ClientAddr: "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff",
		Recipients: 10000,
	}
	if len(long.Account) != 64 {
		t.Fatal(len(long.Account))
	}
	short := sampleFields()
	short.Account = "a"
	lt := mustSeal(t, k, long, "<"+strings.Repeat("m", 900)+"@example.com>")
	st := mustSeal(t, k, short, "")
	if len(lt) > 200 || len(lt) != len(st) {
		t.Errorf("long fields: %d chars, short: %d; want equal and ≤ 200", len(lt), len(st))
	}
	if got, err := k.Open(lt); err != nil || sameFacts(got, long) != nil {
		t.Errorf("long fields: %+v, %v", got, err)
	}
	long.Account += strings.Repeat("y", 10)
	if _, err := k.Seal(long, ""); !errors.Is(err, ErrTooLong) {
		t.Errorf("74-char account with the rest at maximum: %v, want ErrTooLong", err)
	}
}

func TestSealRejectsNegativeRecipients(t *testing.T) {
	f := sampleFields()
	f.Recipients = -1
	if _, err := testRing(t, 1).Seal(f, ""); err == nil {
		t.Error("sealed -1 recipients")
	}
}

func TestHashMessageID(t *testing.T) {
	if string(HashMessageID(" <x@y> ")) != string(HashMessageID("x@y")) {
		t.Error("angle brackets or space change the hash")
	}
	if string(HashMessageID("<X@y>")) == string(HashMessageID("<x@y>")) {
		t.Error("case folded; Message-IDs are compared as written")
	}
	if len(HashMessageID("")) != 6 {
		t.Error("hash length")
	}
}

func TestConcurrentUse(t *testing.T) {
	k := testRing(t, 2, 1)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 200 {
				tok, err := k.Seal(sampleFields(), "<a@b>")
				if err != nil {
					t.Error(err)
					return
				}
				if _, err := k.Open(tok); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func BenchmarkSeal(b *testing.B) {
	k := testRing(b, 1)
	f := sampleFields()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := k.Seal(f, "<20260302140305.GA1234@mail.example.com>"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpen(b *testing.B) {
	k := testRing(b, 1)
	tok := mustSeal(b, k, sampleFields(), "<20260302140305.GA1234@mail.example.com>")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := k.Open(tok); err != nil {
			b.Fatal(err)
		}
	}
}

// TestSealFittingCutsALongAccount: an account that fits is sealed whole;
// one that does not is cut to whole characters within the budget and
// marked, so the token still opens and names it recognisably.
func TestSealFittingCutsALongAccount(t *testing.T) {
	k := testRing(t, 1)
	for _, c := range []struct{ account, want string }{
		{"alice@example.com", "alice@example.com"},
		{strings.Repeat("ü", 90) + "@" + strings.Repeat("x", 8) + ".example.com", strings.Repeat("ü", 32) + "…"},
		{strings.Repeat("x", 130) + "@example.com", strings.Repeat("x", 64) + "…"},
		{"a" + strings.Repeat("ü", 80), "a" + strings.Repeat("ü", 31) + "…"}, // 64 bytes would split a ü
	} {
		f := sampleFields()
		f.Account = c.account
		tok, err := k.SealFitting(f, "<m@example.com>")
		if err != nil {
			t.Fatalf("%q: %v", c.account, err)
		}
		got, err := k.Open(tok)
		if err != nil {
			t.Fatal(err)
		}
		if got.Account != c.want || !utf8.ValidString(got.Account) || !got.BindsMessageID("<m@example.com>") {
			t.Errorf("%q sealed as %q, want %q", c.account, got.Account, c.want)
		}
	}
}

// TestLineBreakInATokenIsMalformed: base64 decoding skips CR and LF, so a
// line break put in place of a character must still be refused, as
// malformed, wherever it is.
func TestLineBreakInATokenIsMalformed(t *testing.T) {
	k := testRing(t, 1)
	tok := mustSeal(t, k, sampleFields(), "<a@b>")
	for i := range len(tok) {
		for _, lb := range []string{"\r", "\n"} {
			if _, err := k.Open(tok[:i] + lb + tok[i+1:]); !errors.Is(err, ErrMalformed) {
				t.Fatalf("%q at %d: %v, want ErrMalformed", lb, i, err)
			}
		}
	}
}
