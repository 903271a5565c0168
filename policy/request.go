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

// Request is one policy request: attribute names and values.
type Request map[string]string

// ReadRequest reads one request: "name=value" lines ended by an empty line
// (SMTPD_POLICY_README, "Protocol description"). It returns io.EOF when the
// peer closes the connection between requests, and an error wrapping
// ErrMalformed for a request that breaks the protocol or the limits. Order
// does not matter and a repeated name keeps its last value, as in Postfix's
// own attribute reader.
func ReadRequest(r *bufio.Reader) (Request, error) {
	req := make(Request, 32)
	budget := MaxRequestBytes
	for n := 0; ; n++ {
		line, err := readLine(r, &budget)
		if err != nil {
			if errors.Is(err, io.EOF) && n == 0 && len(line) == 0 {
				return nil, io.EOF
			}
			if errors.Is(err, io.EOF) {
				return nil, fmt.Errorf("%w: connection closed inside a request", ErrMalformed)
			}
			return nil, err
		}
		if len(line) == 0 {
			if n == 0 {
				return nil, fmt.Errorf("%w: empty request", ErrMalformed)
			}
			return req, nil
		}
		if n >= MaxAttributes {
			return nil, fmt.Errorf("%w: more than %d attributes", ErrMalformed, MaxAttributes)
		}
		name, value, ok := bytes.Cut(line, []byte("="))
		if !ok || len(name) == 0 {
			return nil, fmt.Errorf("%w: line %d is not name=value: %.40q", ErrMalformed, n+1, line)
		}
		req[string(name)] = string(value)
	}
}

// readLine returns one line without its "\n" (and a "\r" before it),
// charging its length to budget.
func readLine(r *bufio.Reader, budget *int) ([]byte, error) {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		*budget -= len(chunk)
		if *budget < 0 {
			return nil, fmt.Errorf("%w: request longer than %d bytes", ErrMalformed, MaxRequestBytes)
		}
		line = append(line, chunk...)
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			return line, err
		}
		line = bytes.TrimSuffix(line[:len(line)-1], []byte("\r"))
		if bytes.IndexByte(line, 0) >= 0 {
			return nil, fmt.Errorf("%w: NUL byte in a line", ErrMalformed)
		}
		return line, nil
	}
}
