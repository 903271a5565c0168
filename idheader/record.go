package idheader

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// The sealed record, version 1, before padding:
//
//	varint   time of acceptance, Unix seconds (zig-zag)
//	uvarint  recipients
//	6 bytes  Message-ID hash
//	uvarint  length ‖ account
//	uvarint  length ‖ queue id
//	1 byte   address kind ‖ address: 4 → 4 bytes, 6 → 16 bytes,
//	         0 → uvarint length ‖ text (anything not in canonical form)
//	zeros    padding up to recordLen
//
// A fixed size hides the length of every field; the worst case the design
// asks for (64-byte account, IPv6, 20-byte queue id) takes 117 of 119 bytes.
const (
	addrText = 0
	addrIPv4 = 4
	addrIPv6 = 6
)

func marshalRecord(f Fields) ([]byte, error) {
	if f.Recipients < 0 || f.Recipients > maxRecipts {
		return nil, fmt.Errorf("idheader: recipients %d out of range", f.Recipients)
	}
	if len(f.MessageIDHash) != hashLen {
		return nil, fmt.Errorf("idheader: message-id hash of %d bytes, want %d", len(f.MessageIDHash), hashLen)
	}
	b := make([]byte, 0, recordLen)
	b = binary.AppendVarint(b, f.Time.Unix())
	b = binary.AppendUvarint(b, uint64(f.Recipients))
	b = append(b, f.MessageIDHash...)
	b = appendString(b, f.Account)
	b = appendString(b, f.QueueID)
	b = appendAddr(b, f.ClientAddr)
	if len(b) > recordLen {
		return nil, fmt.Errorf("%w: %d bytes, room for %d (account %d, queue id %d, address %d bytes)",
			ErrTooLong, len(b), recordLen, len(f.Account), len(f.QueueID), len(f.ClientAddr))
	}
	return append(b, make([]byte, recordLen-len(b))...), nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// appendAddr stores an address in binary only when its canonical text is
// what we were given, so Open returns exactly the string sealed.
func appendAddr(b []byte, s string) []byte {
	a, err := netip.ParseAddr(s)
	switch {
	case err != nil || a.Zone() != "" || a.String() != s:
		return appendString(append(b, addrText), s)
	case a.Is4():
		v := a.As4()
		return append(append(b, addrIPv4), v[:]...)
	default:
		v := a.As16()
		return append(append(b, addrIPv6), v[:]...)
	}
}

var errRecord = errors.New("bad record")

// recordReader consumes a record, remembering the first error.
type recordReader struct {
	b   []byte
	err error
}

func (r *recordReader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: %s", errRecord, what)
	}
	r.b = nil
}

func (r *recordReader) uvarint(what string) uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail(what)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *recordReader) bytes(n uint64, what string) []byte {
	if n > uint64(len(r.b)) {
		r.fail(what)
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *recordReader) string(what string) string {
	return string(r.bytes(r.uvarint(what), what))
}

func unmarshalRecord(b []byte) (Fields, error) {
	var f Fields
	if len(b) != recordLen {
		return f, fmt.Errorf("%w: %d bytes", errRecord, len(b))
	}
	t, n := binary.Varint(b)
	if n <= 0 {
		return f, fmt.Errorf("%w: time", errRecord)
	}
	f.Time = time.Unix(t, 0).UTC()
	r := &recordReader{b: b[n:]}
	rc := r.uvarint("recipients")
	if rc > maxRecipts {
		r.fail("recipients")
	}
	f.Recipients = int(rc)
	f.MessageIDHash = append([]byte(nil), r.bytes(hashLen, "message-id hash")...)
	f.Account = r.string("account")
	f.QueueID = r.string("queue id")
	switch kind := r.bytes(1, "address kind"); {
	case r.err != nil:
	case kind[0] == addrText:
		f.ClientAddr = r.string("address")
	case kind[0] == addrIPv4:
		if v := r.bytes(4, "address"); r.err == nil {
			f.ClientAddr = netip.AddrFrom4([4]byte(v)).String()
		}
	case kind[0] == addrIPv6:
		if v := r.bytes(16, "address"); r.err == nil {
			f.ClientAddr = netip.AddrFrom16([16]byte(v)).String()
		}
	default:
		r.fail("address kind")
	}
	if r.err != nil {
		return Fields{}, r.err
	}
	for _, c := range r.b {
		if c != 0 {
			return Fields{}, fmt.Errorf("%w: padding", errRecord)
		}
	}
	return f, nil
}
