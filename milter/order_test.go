package milter

import (
	"strings"
	"testing"
)

// TestCommandsWithoutMailAreRefused: RCPT or end of message with no MAIL
// in the transaction (after an abort, or never) is refused with a
// temporary failure, never passed on uncounted. Postfix does not send
// this; a broken or hostile peer could.
func TestCommandsWithoutMailAreRefused(t *testing.T) {
	sock, engine, logs := serve(t, nil, Settings{IDHeader: "X-Relay-ID", Seal: func(Stamp) (string, error) { return "token", nil }})
	connect := packet('C', "client\x004\x00\x19192.0.2.1\x00")

	m := dialRaw(t, sock)
	m.ask(connect)
	m.send(packet('D', "R{auth_authen}\x00alice\x00"))
	if code := m.ask(packet('R', "<b@example.net>\x00")); code != 'y' {
		t.Errorf("RCPT before any MAIL answered %q, want a 4xx reply (y)", code)
	}
	if code := m.ask(packet('E', "")); code != 't' {
		t.Errorf("end of message before any MAIL answered %q, want tempfail (t)", code)
	}

	m = dialRaw(t, sock)
	m.connectMailRcpt()
	m.send(packet('A', ""))
	if code := m.ask(packet('R', "<c@example.net>\x00")); code != 'y' {
		t.Errorf("RCPT after abort answered %q, want a 4xx reply (y)", code)
	}
	if code := m.ask(packet('E', "")); code != 't' {
		t.Errorf("end of message after abort answered %q, want tempfail (t)", code)
	}
	if d := waitIdle(t, engine); d.Used != 0 || d.Reserved != 0 {
		t.Errorf("alice used=%d reserved=%d, want nothing", d.Used, d.Reserved)
	}
	if !strings.Contains(logs.String(), "RCPT without MAIL") {
		t.Errorf("not logged:\n%s", logs.String())
	}
}
