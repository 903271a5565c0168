//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"
)

// Message is one transaction the sink accepted from Postfix: the envelope
// and the raw message (CRLF line ends, dot-stuffing undone).
type Message struct {
	From  string   // MAIL FROM address, "" for bounces
	Rcpts []string // RCPT TO addresses, in order
	Data  []byte   // nil when the sink was started without KeepData
	At    time.Time
}

// Headers returns the message's header fields in order, each as
// [name, value] with continuation lines unfolded.
func (m Message) Headers() [][2]string {
	head := m.Data
	if i := bytes.Index(head, []byte("\r\n\r\n")); i >= 0 {
		head = head[:i+2]
	}
	var out [][2]string
	for _, line := range strings.SplitAfter(string(head), "\r\n") {
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			continue
		}
		if (line[0] == ' ' || line[0] == '\t') && len(out) > 0 {
			out[len(out)-1][1] += " " + strings.TrimSpace(line)
			continue
		}
		name, value, _ := strings.Cut(line, ":")
		out = append(out, [2]string{name, strings.TrimSpace(value)})
	}
	return out
}

// Header returns every value of the named header field (case-insensitive).
func (m Message) Header(name string) []string {
	var vals []string
	for _, h := range m.Headers() {
		if strings.EqualFold(h[0], name) {
			vals = append(vals, h[1])
		}
	}
	return vals
}

// MessageID returns the Message-Id header without its angle brackets.
func (m Message) MessageID() string {
	ids := m.Header("Message-Id")
	if len(ids) == 0 {
		return ""
	}
	return strings.Trim(ids[0], "<> ")
}

// Sink is a minimal SMTP server on loopback that stores every message
// Postfix relays to it. It accepts everything; it is the "Internet".
type Sink struct {
	ln       net.Listener
	keepData bool

	mu    sync.Mutex
	msgs  []Message
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
	fresh chan struct{} // closed and replaced on every stored message
}

// maxMessage bounds what the sink reads for one message.
const maxMessage = 32 << 20

// StartSink listens on addr (e.g. "127.0.0.1:0") and serves until Close.
// keepData false stores envelopes only (for the load benchmark).
func StartSink(addr string, keepData bool) (*Sink, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("sink: %w", err)
	}
	s := &Sink{ln: ln, keepData: keepData, conns: map[net.Conn]struct{}{}, fresh: make(chan struct{})}
	s.wg.Add(1)
	go s.acceptLoop()
	return s, nil
}

// Port is the TCP port the sink listens on.
func (s *Sink) Port() int { return s.ln.Addr().(*net.TCPAddr).Port }

// Close stops listening, closes open sessions and waits for them.
func (s *Sink) Close() error {
	err := s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}

// Messages returns a copy of every stored message.
func (s *Sink) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs...)
}

// From returns the stored messages whose envelope sender is from.
func (s *Sink) From(from string) []Message {
	var out []Message
	for _, m := range s.Messages() {
		if strings.EqualFold(m.From, from) {
			out = append(out, m)
		}
	}
	return out
}

// RcptCount is the number of recipient deliveries for envelope sender from.
func (s *Sink) RcptCount(from string) int {
	n := 0
	for _, m := range s.From(from) {
		n += len(m.Rcpts)
	}
	return n
}

// ByMessageID returns the stored messages carrying that Message-Id.
func (s *Sink) ByMessageID(id string) []Message {
	var out []Message
	for _, m := range s.Messages() {
		if m.MessageID() == id {
			out = append(out, m)
		}
	}
	return out
}

// Count is the number of stored messages.
func (s *Sink) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.msgs)
}

// WaitCount waits until at least n messages are stored.
func (s *Sink) WaitCount(ctx context.Context, n int) error {
	for {
		s.mu.Lock()
		have, fresh := len(s.msgs), s.fresh
		s.mu.Unlock()
		if have >= n {
			return nil
		}
		select {
		case <-fresh:
		case <-ctx.Done():
			return fmt.Errorf("sink holds %d messages, want %d: %w", have, n, ctx.Err())
		}
	}
}

func (s *Sink) acceptLoop() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.serve(c)
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
			c.Close()
		}()
	}
}

func (s *Sink) store(m Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.msgs = append(s.msgs, m)
	close(s.fresh)
	s.fresh = make(chan struct{})
}

// serve speaks just enough RFC 5321 for Postfix's smtp client: EHLO/HELO,
// MAIL, RCPT, DATA, RSET, NOOP, QUIT. Commands may arrive pipelined.
func (s *Sink) serve(c net.Conn) {
	r := bufio.NewReaderSize(c, 64<<10)
	w := bufio.NewWriter(c)
	reply := func(lines ...string) bool {
		for _, l := range lines {
			w.WriteString(l)
			w.WriteString("\r\n")
		}
		// Flush only when no pipelined command is waiting (RFC 2920 3.1).
		if r.Buffered() > 0 {
			return true
		}
		return w.Flush() == nil
	}
	if !reply("220 sink.e2e.test ESMTP e2e sink") {
		return
	}
	var cur *Message
	for n := 0; ; n++ {
		c.SetReadDeadline(time.Now().Add(5 * time.Minute))
		line, err := readLine(r)
		if err != nil {
			return
		}
		verb, arg, _ := strings.Cut(line, " ")
		switch strings.ToUpper(verb) {
		case "EHLO":
			cur = nil
			reply("250-sink.e2e.test", "250-PIPELINING", "250-8BITMIME", "250-SIZE 33554432", "250 SMTPUTF8")
		case "HELO":
			cur = nil
			reply("250 sink.e2e.test")
		case "MAIL":
			addr, ok := pathArg(arg, "FROM:")
			if !ok {
				reply("501 5.5.4 Syntax: MAIL FROM:<address>")
				continue
			}
			cur = &Message{From: addr}
			reply("250 2.1.0 Ok")
		case "RCPT":
			addr, ok := pathArg(arg, "TO:")
			switch {
			case cur == nil:
				reply("503 5.5.1 Error: need MAIL command")
			case !ok:
				reply("501 5.5.4 Syntax: RCPT TO:<address>")
			default:
				cur.Rcpts = append(cur.Rcpts, addr)
				reply("250 2.1.5 Ok")
			}
		case "DATA":
			if cur == nil || len(cur.Rcpts) == 0 {
				reply("503 5.5.1 Error: need RCPT command")
				continue
			}
			if !reply("354 End data with <CR><LF>.<CR><LF>") || w.Flush() != nil {
				return
			}
			data, err := readData(r, s.keepData)
			if err != nil {
				reply("552 5.3.4 " + err.Error())
				return
			}
			cur.Data, cur.At = data, time.Now()
			s.store(*cur)
			cur = nil
			reply(fmt.Sprintf("250 2.0.0 Ok: stored as %d", n))
		case "RSET":
			cur = nil
			reply("250 2.0.0 Ok")
		case "NOOP":
			reply("250 2.0.0 Ok")
		case "QUIT":
			reply("221 2.0.0 Bye")
			w.Flush()
			return
		default:
			reply("502 5.5.2 Error: command not recognized")
		}
	}
}

func readLine(r *bufio.Reader) (string, error) {
	line, err := r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		return "", errors.New("line too long")
	}
	if err != nil {
		return "", err
	}
	return strings.TrimRight(string(line), "\r\n"), nil
}

// pathArg extracts the address from "FROM:<a@b> SIZE=1" style arguments.
func pathArg(arg, prefix string) (string, bool) {
	if len(arg) < len(prefix) || !strings.EqualFold(arg[:len(prefix)], prefix) {
		return "", false
	}
	rest := strings.TrimSpace(arg[len(prefix):])
	if !strings.HasPrefix(rest, "<") {
		return "", false
	}
	end := strings.IndexByte(rest, '>')
	if end < 0 {
		return "", false
	}
	return rest[1:end], true
}

// readData reads a DATA body up to the lone dot and undoes dot-stuffing
// (RFC 5321 4.5.2). Bare LF line ends are kept as sent.
func readData(r *bufio.Reader, keep bool) ([]byte, error) {
	var buf bytes.Buffer
	size, atStart := 0, true
	for {
		line, err := r.ReadSlice('\n')
		full := errors.Is(err, bufio.ErrBufferFull) // a very long line comes in pieces
		if err != nil && !full {
			return nil, err
		}
		if atStart && (bytes.Equal(line, []byte(".\r\n")) || bytes.Equal(line, []byte(".\n"))) {
			if !keep {
				return nil, nil
			}
			return buf.Bytes(), nil
		}
		size += len(line)
		if size > maxMessage {
			return nil, errors.New("message too big for the sink")
		}
		if keep {
			if atStart && line[0] == '.' {
				line = line[1:]
			}
			buf.Write(line)
		}
		atStart = !full
	}
}
