package milter

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

func TestCheckPacket(t *testing.T) {
	for _, c := range []struct {
		name string
		code byte
		data string
		ok   bool
	}{
		{"connect inet", 'C', "host\x004\x00\x19192.0.2.1\x00", true},
		{"connect unknown family", 'C', "host\x00U", true},
		{"connect host only", 'C', "host\x00", false},
		{"connect no NUL", 'C', "host", false},
		{"connect inet without port", 'C', "host\x004\x00", false},
		{"mail", 'M', "<a@example.org>\x00SIZE=10\x00", true},
		{"mail no NUL", 'M', "<a@example.org>", false},
		{"rcpt", 'R', "<b@example.net>\x00", true},
		{"rcpt no NUL", 'R', "<b@example.net>", false},
		{"header", 'L', "Subject\x00hi\x00", true},
		{"end of message", 'E', "", true},
	} {
		err := checkPacket(c.code, []byte(c.data))
		if (err == nil) != c.ok || (err != nil && !errors.Is(err, errMalformed)) {
			t.Errorf("%s: %v, want ok=%v", c.name, err, c.ok)
		}
	}
}

// packet frames one milter command.
func packet(code byte, data string) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(1+len(data)))
	return append(append(b, code), data...)
}

// rawMTA is a hand-driven MTA side of a milter connection.
type rawMTA struct {
	t *testing.T
	c net.Conn
}

func dialRaw(t *testing.T, sock string) *rawMTA {
	t.Helper()
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	m := &rawMTA{t: t, c: c}
	// Version 6, every action, every protocol option offered.
	neg := binary.BigEndian.AppendUint32(nil, 6)
	neg = binary.BigEndian.AppendUint32(neg, 0x1ff)
	neg = binary.BigEndian.AppendUint32(neg, 0x1fffff)
	if code := m.ask(packet('O', string(neg))); code != 'O' {
		t.Fatalf("negotiation answered %q", code)
	}
	return m
}

func (m *rawMTA) send(b []byte) {
	m.t.Helper()
	if _, err := m.c.Write(b); err != nil {
		m.t.Fatal(err)
	}
}

// ask sends b and returns the code of the reply.
func (m *rawMTA) ask(b []byte) byte {
	m.t.Helper()
	m.send(b)
	m.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var head [4]byte
	if _, err := io.ReadFull(m.c, head[:]); err != nil {
		m.t.Fatalf("no reply: %v", err)
	}
	body := make([]byte, binary.BigEndian.Uint32(head[:]))
	if _, err := io.ReadFull(m.c, body); err != nil || len(body) == 0 {
		m.t.Fatalf("short reply: %v", err)
	}
	return body[0]
}

// connectMailRcpt opens a message of alice with one recipient, each step
// answered "continue".
func (m *rawMTA) connectMailRcpt() {
	m.t.Helper()
	for _, step := range []struct {
		name string
		pkt  []byte
	}{
		{"CONNECT", packet('C', "client\x004\x00\x19192.0.2.1\x00")},
		{"MAIL", append(packet('D', "M{auth_authen}\x00alice\x00"), packet('M', "<a@example.org>\x00")...)},
		{"RCPT", packet('R', "<b@example.net>\x00")},
	} {
		if code := m.ask(step.pkt); code != 'c' {
			m.t.Fatalf("%s answered %q", step.name, code)
		}
	}
}

// closed waits for the server to end the connection.
func (m *rawMTA) closed() error {
	m.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := io.ReadAll(m.c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return errors.New("the connection was left open")
	}
	return nil
}

// TestMalformedPacketsEndOnlyTheirConnection: packets go-milter would index
// out of range on (and so panic in a goroutine of its own, killing the
// daemon) end their connection instead, with a logged reason; the
// recipient the session held is released, and the server goes on serving.
func TestMalformedPacketsEndOnlyTheirConnection(t *testing.T) {
	sock, engine, logs := serve(t, nil, Settings{IDHeader: "X-Relay-ID"})
	for _, c := range []struct {
		name     string
		raw      []byte
		reserved bool // sent after a recipient was reserved
		want     string
	}{
		{"empty packet", []byte{0, 0, 0, 0}, true, "length 0"},
		{"oversized packet", []byte{0x02, 0x00, 0x00, 0x00, 'B'}, true, "length 33554432"},
		{"RCPT address without NUL", packet('R', "<c@example.net>"), true, "RCPT address without its NUL"},
		{"MAIL address without NUL", packet('M', "<a@example.org>"), true, "MAIL address without its NUL"},
		{"CONNECT with a host name only", packet('C', "host\x00"), false, "CONNECT without host name"},
		{"CONNECT inet without a port", packet('C', "host\x004"), false, "without a port"},
	} {
		t.Run(c.name, func(t *testing.T) {
			off := len(logs.String())
			m := dialRaw(t, sock)
			if c.reserved {
				m.connectMailRcpt()
				if d := check(t, engine); d.Reserved != 1 {
					t.Fatalf("%d reserved after one RCPT, want 1", d.Reserved)
				}
			}
			m.send(c.raw)
			if err := m.closed(); err != nil {
				t.Fatal(err)
			}
			if d := waitIdle(t, engine); d.Reserved != 0 {
				t.Errorf("%d relays still held after the connection ended", d.Reserved)
			}
			if log := logs.String()[off:]; !strings.Contains(log, "closing milter connection") || !strings.Contains(log, c.want) {
				t.Errorf("log does not say why (%q):\n%s", c.want, log)
			}
			if code := dialRaw(t, sock).ask(packet('C', "client\x004\x00\x19192.0.2.1\x00")); code != 'c' {
				t.Fatalf("the next connection's CONNECT answered %q", code)
			}
		})
	}
}

// FuzzMTAStream feeds arbitrary bytes, as if from the MTA after the
// negotiation, to a live server. go-milter parses in goroutines of its own,
// so any panic it hits fails the fuzz run by ending the process.
func FuzzMTAStream(f *testing.F) {
	valid := string(packet('C', "client\x004\x00\x19192.0.2.1\x00")) +
		string(packet('D', "M{auth_authen}\x00alice\x00")) +
		string(packet('M', "<a@example.org>\x00")) +
		string(packet('R', "<b@example.net>\x00")) +
		string(packet('L', "Message-ID\x00<x@y>\x00")) +
		string(packet('E', ""))
	for _, seed := range []string{
		valid,
		valid[:len(valid)-3],
		"\x00\x00\x00\x00",
		string(packet('R', "<c@example.net>")),
		string(packet('C', "host\x00")),
		string(packet('D', "")),
		string(packet('L', "\x00")),
		string(packet('A', "")) + string(packet('R', "<b@example.net>\x00")),
	} {
		f.Add([]byte(seed))
	}
	sock, _, _ := serve(f, nil, Settings{IDHeader: "X-Relay-ID", Seal: func(Stamp) (string, error) { return "token", nil }})
	f.Fuzz(func(t *testing.T, stream []byte) {
		m := dialRaw(t, sock)
		// A write may fail once the server has refused a packet and hung
		// up; what counts is that it hangs up and stays alive (a panic
		// while parsing would end this process).
		m.c.Write(stream)
		m.c.(*net.UnixConn).CloseWrite() // then EOF after the stream
		if err := m.closed(); err != nil {
			t.Fatal(err)
		}
	})
}
