package idheader

import (
	"bytes"
	"fmt"
	"os"
	"testing"
	"time"
)

// testRing returns a keyring whose keys are derived from their ids, newest
// (sealing) first, so two rings built with the same id share that key.
func testRing(t testing.TB, ids ...int) *Keyring {
	t.Helper()
	var b bytes.Buffer
	for _, id := range ids {
		b.Write(keyLine(uint16(id), bytes.Repeat([]byte{byte(id)}, keyLen)))
	}
	k, err := ParseKeyring(&b)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// fixtureRing is the keyring the tokens in testdata/*.eml were sealed with.
func fixtureRing(t testing.TB) *Keyring {
	t.Helper()
	return parseKeysFile(t, "testdata/test.keys")
}

// parseKeysFile parses a keys file of testdata, without the mode check.
func parseKeysFile(t testing.TB, path string) *Keyring {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	k, err := ParseKeyring(f)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func sampleFields() Fields {
	return Fields{
		Account:    "alice@example.com",
		Time:       time.Date(2026, 3, 2, 14, 3, 5, 0, time.UTC),
		QueueID:    "4Xq1bD2kVhz9",
		ClientAddr: "203.0.113.7",
		Recipients: 3,
	}
}

func mustSeal(t testing.TB, k *Keyring, f Fields, messageID string) string {
	t.Helper()
	tok, err := k.Seal(f, messageID)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// sameFacts compares what a token carries, leaving out KeyID and the hash.
func sameFacts(a, b Fields) error {
	if a.Account != b.Account || !a.Time.Equal(b.Time) || a.QueueID != b.QueueID ||
		a.ClientAddr != b.ClientAddr || a.Recipients != b.Recipients {
		return fmt.Errorf("got %+v, want %+v", a, b)
	}
	return nil
}
