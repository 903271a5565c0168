// Package policy is relaycap's Postfix policy-delegation service
// (SMTPD_POLICY_README): the early, cheap gate at RCPT. It answers from the
// same quota engine as the milter but never commits; the milter is the
// authority that counts.
package policy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// Limits on one request. Postfix's own requests have about 30 attributes and
// stay well under 2 KiB; anything far beyond is not Postfix.
const (
	MaxAttributes   = 100
	MaxRequestBytes = 16 << 10
)

// ErrMalformed marks a request that breaks the protocol.
var ErrMalformed = errors.New("malformed policy request")

// Request is what the service decides on out of one policy request: values
// without NUL bytes. Every other attribute is checked for the protocol's
// form (name=value) and then dropped.
type Request struct {
	ProtocolState string // protocol_state
	SASLUsername  string // sasl_username
	QueueID       string // queue_id
	Recipient     string // recipient
	Attributes    int    // the number of name=value lines
}

// Reader reads the policy requests of one connection. It reuses its memory
// from request to request, and a value that repeats the connection's last
// request (the login of an SMTP session, the queue id of its message) is
// not copied again: Postfix sends some 30 attributes per recipient, and a
// request costs no allocation but the recipient's.
type Reader struct {
	r    *bufio.Reader
	long []byte // a line longer than r's buffer is put together here
	last Request
}

// NewReader reads requests from r.
func NewReader(r io.Reader) *Reader { return &Reader{r: bufio.NewReaderSize(r, 4096)} }

// Read reads one request: "name=value" lines ended by an empty line
// (SMTPD_POLICY_README, "Protocol description"). It returns io.EOF when the
// peer closes the connection between requests, and an error wrapping
// ErrMalformed for a request that breaks the protocol or the limits. Order
// does not matter and a repeated name keeps its last value, as in Postfix's
// own attribute reader.
func (rd *Reader) Read() (Request, error) {
	var req Request
	budget := MaxRequestBytes
	for n := 0; ; n++ {
		line, err := rd.readLine(&budget)
		if err != nil {
			if errors.Is(err, io.EOF) && n == 0 && len(line) == 0 {
				return Request{}, io.EOF
			}
			if errors.Is(err, io.EOF) {
				return Request{}, fmt.Errorf("%w: connection closed inside a request", ErrMalformed)
			}
			return Request{}, err
		}
		if len(line) == 0 {
			if n == 0 {
				return Request{}, fmt.Errorf("%w: empty request", ErrMalformed)
			}
			req.Attributes = n
			rd.last = req
			return req, nil
		}
		if n >= MaxAttributes {
			return Request{}, fmt.Errorf("%w: more than %d attributes", ErrMalformed, MaxAttributes)
		}
		eq := bytes.IndexByte(line, '=') // not bytes.Cut: its general search costs a fifth of a request
		if eq <= 0 {
			return Request{}, fmt.Errorf("%w: line %d is not name=value: %.40q", ErrMalformed, n+1, line)
		}
		name, value := line[:eq], line[eq+1:]
		var keep *string
		var last string
		switch string(name) {
		case "protocol_state":
			keep, last = &req.ProtocolState, rd.last.ProtocolState
		case "sasl_username":
			keep, last = &req.SASLUsername, rd.last.SASLUsername
		case "queue_id":
			keep, last = &req.QueueID, rd.last.QueueID
		case "recipient":
			keep, last = &req.Recipient, rd.last.Recipient
		default:
			continue // dropped unread: its value cannot reach a decision or a log
		}
		if bytes.IndexByte(value, 0) >= 0 {
			return Request{}, fmt.Errorf("%w: NUL byte in %s", ErrMalformed, name)
		}
		*keep = reuse(last, value)
	}
}

// reuse returns last when value spells it, else a copy of value.
func reuse(last string, value []byte) string {
	if string(value) == last {
		return last
	}
	return string(value)
}

// readLine returns one line without its "\n" (and a "\r" before it),
// charging its length to budget. The line is valid until the next read.
func (rd *Reader) readLine(budget *int) ([]byte, error) {
	line, err := rd.r.ReadSlice('\n')
	*budget -= len(line)
	if err == bufio.ErrBufferFull {
		rd.long = append(rd.long[:0], line...)
		for err == bufio.ErrBufferFull && *budget >= 0 {
			line, err = rd.r.ReadSlice('\n')
			*budget -= len(line)
			rd.long = append(rd.long, line...)
		}
		line = rd.long
	}
	if *budget < 0 {
		return nil, fmt.Errorf("%w: request longer than %d bytes", ErrMalformed, MaxRequestBytes)
	}
	if err != nil {
		return line, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}
