package idheader

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzOpen: Open never panics, classifies every failure, and whatever it
// opens seals again to the same facts.
func FuzzOpen(f *testing.F) {
	ring := fixtureRing(f)
	f.Add(mustSeal(f, ring, sampleFields(), "<a@b>"))
	f.Add("")
	f.Add(strings.Repeat("A", TokenLen))
	f.Add(strings.Repeat("_", TokenLen+1))
	files, _ := filepath.Glob("testdata/*.eml")
	for _, name := range files {
		msg, _ := os.Open(name)
		found, _ := FindToken(msg, "X-Relay-ID")
		msg.Close()
		for _, fd := range found {
			f.Add(fd.Token)
		}
	}
	f.Fuzz(func(t *testing.T, token string) {
		got, err := ring.Open(token)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnknownKey) && !errors.Is(err, ErrForged) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		tok, err := ring.seal(got)
		if err != nil {
			t.Fatalf("opened %+v but cannot seal it again: %v", got, err)
		}
		again, err := ring.Open(tok)
		if err != nil || sameFacts(again, got) != nil || string(again.MessageIDHash) != string(got.MessageIDHash) {
			t.Fatalf("resealed %+v, reopened %+v, %v", got, again, err)
		}
	})
}

// FuzzRecord reaches the record parser, which Open only runs on authentic
// input: it must not panic, and what it reads must write back the same.
func FuzzRecord(f *testing.F) {
	f.Add(make([]byte, recordLen))
	for _, addr := range []string{"192.0.2.1", "2001:db8::1", "unknown"} {
		fl := sampleFields()
		fl.ClientAddr = addr
		fl.MessageIDHash = HashMessageID("<a@b>")
		rec, _ := marshalRecord(fl)
		f.Add(rec)
	}
	f.Fuzz(func(t *testing.T, rec []byte) {
		got, err := unmarshalRecord(rec)
		if err != nil {
			return
		}
		b, err := marshalRecord(got)
		if err != nil {
			t.Fatalf("read %+v but cannot write it: %v", got, err)
		}
		again, err := unmarshalRecord(b)
		if err != nil || sameFacts(again, got) != nil || string(again.MessageIDHash) != string(got.MessageIDHash) {
			t.Fatalf("wrote %+v, read back %+v, %v", got, again, err)
		}
	})
}

// FuzzFindToken: complaint messages are hostile input; the search must not
// panic or hang, and returns tokens without white space.
func FuzzFindToken(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.eml")
	for _, name := range files {
		b, _ := os.ReadFile(name)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		found, _ := FindToken(bytes.NewReader(msg), "X-Relay-ID")
		for _, fd := range found {
			if strings.ContainsAny(fd.Token, " \t\r\n") {
				t.Fatalf("token with space: %q", fd.Token)
			}
		}
	})
}
