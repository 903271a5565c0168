// Package idheader seals and opens the identification token that relaycap
// stamps on every relayed message (DESIGN.md, decision 6), and manages the
// keys file it is sealed with.
//
// A token is AES-256-GCM over a compact binary record of the account, the
// time of acceptance, the Postfix queue id, the client address, the number
// of accepted recipients and a short hash of the message's Message-ID. It
// reveals nothing but its format version and the id of the key that sealed
// it, and every token has the same length, whatever the account's name.
package idheader

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Token layout, version 1 (all tokens are exactly TokenLen characters):
//
//	offset  size  field
//	0       1     version (1)                 ┐ in clear, and the GCM
//	1       2     key id, big endian          ┘ additional data
//	3       12    random nonce
//	15      119   sealed record (see record.go), padded to a fixed size
//	134     16    GCM tag
//
// 150 bytes encode to 200 base64url characters with no padding bits left
// over, so each character carries six authenticated bits.
const (
	version1   = 1
	headerLen  = 3
	nonceLen   = 12
	tagLen     = 16
	recordLen  = 119
	rawLen     = headerLen + nonceLen + recordLen + tagLen
	hashLen    = 6
	keyLen     = 32
	maxKeyID   = 1<<16 - 1
	maxRecipts = 1<<31 - 1

	// TokenLen is the length in characters of every version 1 token.
	TokenLen = (rawLen*8 + 5) / 6
)

// Errors returned (wrapped, with detail) by Open.
var (
	// ErrMalformed: not a token of a version we know (bad characters,
	// length or version byte).
	ErrMalformed = errors.New("malformed token")
	// ErrUnknownKey: the token names a key id the keyring does not hold.
	ErrUnknownKey = errors.New("token sealed with an unknown key")
	// ErrForged: the token does not authenticate under the key it names;
	// it was altered, or made with a different key of the same id.
	ErrForged = errors.New("token forged or tampered with")
	// ErrTooLong: the fields do not fit in a token (Seal only).
	ErrTooLong = errors.New("fields too long for a token")
)

// strict rejects non-canonical encodings, so no two strings open to the
// same token. 150 bytes leave no spare bits, but the check is cheap.
var b64 = base64.RawURLEncoding.Strict()

// Fields are the facts a token carries.
type Fields struct {
	Account    string
	Time       time.Time // time of acceptance; sealed with seconds precision
	QueueID    string    // Postfix queue id
	ClientAddr string    // client IP address, as text
	Recipients int       // accepted recipients

	KeyID         string // id of the key that sealed the token; set by Open
	MessageIDHash []byte // HashMessageID of the message's Message-ID; set by Open
}

// Seal returns a token for f bound to messageID. It ignores f.KeyID and
// f.MessageIDHash: the newest key seals, and the hash is taken from
// messageID. Each call draws a fresh nonce from crypto/rand. Fields that do
// not fit (an account much over 64 bytes) fail with ErrTooLong.
func (k *Keyring) Seal(f Fields, messageID string) (string, error) {
	f.MessageIDHash = HashMessageID(messageID)
	return k.seal(f)
}

// SealFitting is Seal for the milter: an account too long for the token's
// fixed size (legal addresses reach 320 bytes) is cut to 64, 32, 16 or 8
// bytes of whole characters and marked with "…", instead of failing. The
// token still names the queue id, and the decision line for that queue id
// names the whole login; deferring such mail forever would be worse.
func (k *Keyring) SealFitting(f Fields, messageID string) (string, error) {
	account := f.Account
	token, err := k.Seal(f, messageID)
	for n := 64; errors.Is(err, ErrTooLong) && n >= 8; n /= 2 {
		f.Account = truncateUTF8(account, n) + "…"
		token, err = k.Seal(f, messageID)
	}
	return token, err
}

// truncateUTF8 cuts s to at most n bytes without splitting a character.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func (k *Keyring) seal(f Fields) (string, error) {
	if len(k.keys) == 0 {
		return "", errors.New("idheader: empty keyring")
	}
	rec, err := marshalRecord(f)
	if err != nil {
		return "", err
	}
	key := k.keys[0]
	buf := make([]byte, headerLen, rawLen)
	buf[0] = version1
	binary.BigEndian.PutUint16(buf[1:], key.id)
	// The random-nonce AEAD writes nonce‖ciphertext‖tag after the header,
	// and authenticates the header so the key id cannot be swapped.
	buf = key.aead.Seal(buf, nil, rec, buf[:headerLen])
	return b64.EncodeToString(buf), nil
}

// Open authenticates and decrypts a token. Surrounding white space is
// ignored. Errors wrap ErrMalformed, ErrUnknownKey or ErrForged.
func (k *Keyring) Open(token string) (Fields, error) {
	token = strings.TrimSpace(token)
	if len(token) != TokenLen {
		return Fields{}, fmt.Errorf("%w: %d characters, want %d", ErrMalformed, len(token), TokenLen)
	}
	// The decoder skips CR and LF, but a token of TokenLen characters with
	// one in it holds fewer than TokenLen base64 characters and decodes to
	// fewer than rawLen bytes: the length check refuses it.
	raw, err := b64.DecodeString(token)
	if err != nil || len(raw) != rawLen {
		return Fields{}, fmt.Errorf("%w: not base64url: %v", ErrMalformed, err)
	}
	if raw[0] != version1 {
		return Fields{}, fmt.Errorf("%w: unknown version %d", ErrMalformed, raw[0])
	}
	id := binary.BigEndian.Uint16(raw[1:headerLen])
	aead, ok := k.byID[id]
	if !ok {
		return Fields{}, fmt.Errorf("%w: key id %d", ErrUnknownKey, id)
	}
	rec, err := aead.Open(nil, nil, raw[headerLen:], raw[:headerLen])
	if err != nil {
		return Fields{}, fmt.Errorf("%w: does not authenticate under key %d", ErrForged, id)
	}
	f, err := unmarshalRecord(rec)
	if err != nil {
		// Authentic yet unreadable: only a bug in Seal could make this.
		return Fields{}, fmt.Errorf("%w: sealed record: %v", ErrMalformed, err)
	}
	f.KeyID = strconv.Itoa(int(id))
	return f, nil
}

// HashMessageID returns the short hash of a Message-ID that tokens carry:
// the first bytes of SHA-256 over the id without surrounding white space
// and angle brackets, so "<a@b>" and "a@b" hash alike.
func HashMessageID(messageID string) []byte {
	s := strings.TrimSpace(messageID)
	if len(s) >= 2 && s[0] == '<' && s[len(s)-1] == '>' {
		s = s[1 : len(s)-1]
	}
	sum := sha256.Sum256([]byte(s))
	return sum[:hashLen]
}

// BindsMessageID reports whether f was sealed for a message with this
// Message-ID. A token copied into another message fails this check.
func (f Fields) BindsMessageID(messageID string) bool {
	h := HashMessageID(messageID)
	return len(f.MessageIDHash) == len(h) && string(f.MessageIDHash) == string(h)
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCMWithRandomNonce(block)
}
