package sockets

import (
	"fmt"
	"net"
	"strconv"
	"strings"
)

// maxUnixPath is the longest path a Linux sockaddr_un holds (108 bytes with
// the terminating NUL).
const maxUnixPath = 107

// ParseListen parses a listen address in the milter convention used by
// Postfix's smtpd_milters: "unix:/path" gives ("unix", "/path") and
// "inet:host:port" gives ("tcp", "host:port"), ready for net.Listen. An IPv6
// host goes in brackets: "inet:[::1]:10031". An empty host listens on every
// address; port 0 picks a free port.
func ParseListen(s string) (network, address string, err error) {
	kind, addr, _ := strings.Cut(s, ":")
	switch kind {
	case "unix":
		switch {
		case addr == "":
			return "", "", fmt.Errorf("%q: empty socket path", s)
		case len(addr) > maxUnixPath:
			return "", "", fmt.Errorf("%q: socket path longer than %d bytes", s, maxUnixPath)
		}
		return "unix", addr, nil
	case "inet":
		_, port, err := net.SplitHostPort(addr)
		if err != nil {
			return "", "", fmt.Errorf("%q: %v", s, err)
		}
		if _, err := strconv.ParseUint(port, 10, 16); err != nil {
			return "", "", fmt.Errorf("%q: port %q is not a number 0..65535", s, port)
		}
		return "tcp", addr, nil
	}
	return "", "", fmt.Errorf("%q is not unix:/path or inet:host:port", s)
}
