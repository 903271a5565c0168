package sockets

import (
	"strings"
	"testing"
)

func TestParseListen(t *testing.T) {
	for _, tc := range []struct{ in, network, addr string }{
		{"unix:/var/spool/postfix/relaycap/milter.sock", "unix", "/var/spool/postfix/relaycap/milter.sock"},
		{"unix:relaycap-data/admin.sock", "unix", "relaycap-data/admin.sock"},
		{"inet:127.0.0.1:10031", "tcp", "127.0.0.1:10031"},
		{"inet:[::1]:10031", "tcp", "[::1]:10031"},
		{"inet:localhost:0", "tcp", "localhost:0"},
		{"inet::10031", "tcp", ":10031"},
	} {
		network, addr, err := ParseListen(tc.in)
		if err != nil || network != tc.network || addr != tc.addr {
			t.Errorf("ParseListen(%q) = %q, %q, %v; want %q, %q", tc.in, network, addr, err, tc.network, tc.addr)
		}
	}
	for _, in := range []string{
		"", "unix:", "inet:", "tcp:127.0.0.1:1", "127.0.0.1:10031", "inet:127.0.0.1", "inet:::1:10031",
		"inet:127.0.0.1:65536", "inet:127.0.0.1:-1", "inet:127.0.0.1:smtp",
		"unix:/" + strings.Repeat("x", 107),
	} {
		if network, addr, err := ParseListen(in); err == nil {
			t.Errorf("ParseListen(%q) = %q, %q; want an error", in, network, addr)
		}
	}
}
