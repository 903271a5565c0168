package idheader

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"net/textproto"
	"strings"
	"unicode"
)

// Found is a token found in a message.
type Found struct {
	Token     string // the header's value with all white space removed
	MessageID string // Message-ID of the message whose header held the token
	Nested    bool   // in a forwarded or reported message, not the top level
}

// maxDepth bounds the nesting FindToken follows; a complaint needs two or three.
const maxDepth = 8

// FindToken returns every headerName header in a whole message, in order:
// the top-level header, then the headers of messages inside it, attached
// as message/rfc822 (a forward, or the original in an ARF report, RFC 5965)
// or reported as text/rfc822-headers (RFC 6522), at any multipart depth.
// Bodies are decoded from base64 or quoted-printable where declared. Parts
// that do not parse are skipped: complaints are often mangled, and what
// can be read is worth having. A leading mbox "From " line is ignored.
func FindToken(msg io.Reader, headerName string) ([]Found, error) {
	br := bufio.NewReader(msg)
	if b, _ := br.Peek(5); string(b) == "From " {
		if _, err := br.ReadString('\n'); err != nil {
			return nil, fmt.Errorf("reading message: %w", err)
		}
	}
	m, err := mail.ReadMessage(br)
	if err != nil {
		return nil, fmt.Errorf("reading message header: %w", err)
	}
	s := &search{name: textproto.CanonicalMIMEHeaderKey(headerName)}
	s.message(m.Header, m.Body, false, 0)
	return s.found, nil
}

type search struct {
	name  string
	found []Found
}

func (s *search) message(h map[string][]string, body io.Reader, nested bool, depth int) {
	s.header(h, nested)
	s.body(textproto.MIMEHeader(h), body, depth)
}

func (s *search) header(h map[string][]string, nested bool) {
	var mid string
	if v := h["Message-Id"]; len(v) > 0 {
		mid = strings.TrimSpace(v[0])
	}
	for _, v := range h[s.name] {
		s.found = append(s.found, Found{Token: stripSpace(v), MessageID: mid, Nested: nested})
	}
}

// body searches the content described by h for embedded messages.
func (s *search) body(h textproto.MIMEHeader, body io.Reader, depth int) {
	if depth >= maxDepth {
		return
	}
	mt, params, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil {
		return // absent or unreadable: text/plain, nothing to find
	}
	body = decode(h.Get("Content-Transfer-Encoding"), body)
	switch mt {
	case "message/rfc822", "message/global":
		if m, err := mail.ReadMessage(body); err == nil {
			s.message(m.Header, m.Body, true, depth+1)
		}
	case "text/rfc822-headers":
		// Headers only; ReadMessage accepts them without the blank line.
		if m, err := mail.ReadMessage(body); err == nil {
			s.header(m.Header, true)
		}
	default:
		if !strings.HasPrefix(mt, "multipart/") || params["boundary"] == "" {
			return
		}
		mr := multipart.NewReader(body, params["boundary"])
		for {
			// NextPart undoes quoted-printable itself.
			p, err := mr.NextPart()
			if err != nil {
				return // the end, or a truncated message: keep what we found
			}
			s.body(p.Header, p, depth+1)
		}
	}
}

func decode(cte string, r io.Reader) io.Reader {
	switch strings.ToLower(strings.TrimSpace(cte)) {
	case "base64":
		return base64.NewDecoder(base64.StdEncoding, r)
	case "quoted-printable":
		return quotedprintable.NewReader(r)
	}
	return r
}

// stripSpace removes folding and any other white space from a header value.
func stripSpace(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return -1
		}
		return r
	}, s)
}
