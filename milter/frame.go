package milter

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
)

// maxPacket bounds one milter packet. Postfix sends body chunks of at most
// 64 KiB and a header as long as its header_size_limit (100 KiB by
// default); go-milter itself would allocate up to 512 MiB for a length
// prefix before it looks at the data.
const maxPacket = 16 << 20

// errMalformed marks a packet the MTA should never send.
var errMalformed = errors.New("malformed milter packet")

// checkedListener hands go-milter connections whose packets are checked
// before the library parses them: go-milter indexes into a packet without
// bounds checks (an empty packet, an address without its NUL) in a
// goroutine of its own, where a panic would take the whole daemon down.
type checkedListener struct {
	net.Listener
	log *slog.Logger
}

func (l checkedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &checkedConn{Conn: c, in: bufio.NewReaderSize(c, 4096), log: l.log}, nil
}

// checkedConn reads one whole packet at a time from the MTA, checks it and
// only then lets go-milter read it. A bad packet ends the connection with
// a read error; go-milter then calls Cleanup, which releases what the
// session held, and Postfix applies milter_default_action (tempfail).
//
// It reads through a buffer: the MTA sends a command's macros and the
// command back to back, and a packet's length and its data arrive
// together, so one read system call mostly serves several packets where
// reading each length and each packet on its own took two or more.
type checkedConn struct {
	net.Conn
	in      *bufio.Reader
	log     *slog.Logger
	buf     []byte // the last packet, reused for the next
	pending []byte // checked bytes go-milter has not read yet
	err     error
}

func (c *checkedConn) Read(p []byte) (int, error) {
	if len(c.pending) == 0 {
		if c.err != nil {
			return 0, c.err
		}
		if err := c.next(); err != nil {
			return 0, err
		}
	}
	n := copy(p, c.pending)
	c.pending = c.pending[n:]
	return n, nil
}

// next reads and checks one packet: 4 bytes of length, then a command
// byte and its data.
func (c *checkedConn) next() error {
	var head [4]byte
	if _, err := io.ReadFull(c.in, head[:]); err != nil {
		return err // EOF or a deadline: go-milter's own business
	}
	n := binary.BigEndian.Uint32(head[:])
	if n == 0 || n > maxPacket {
		return c.fail(fmt.Errorf("%w: length %d (want 1 to %d)", errMalformed, n, maxPacket))
	}
	// go-milter copies what it reads, so the last packet's memory serves
	// again once it has all been read.
	if uint32(cap(c.buf)) < 4+n {
		c.buf = make([]byte, 4+n)
	}
	buf := c.buf[:4+n]
	copy(buf, head[:])
	if _, err := io.ReadFull(c.in, buf[4:]); err != nil {
		return err
	}
	if err := checkPacket(buf[4], buf[5:]); err != nil {
		return c.fail(err)
	}
	c.pending = buf
	return nil
}

func (c *checkedConn) fail(err error) error {
	c.err = err
	c.log.Error("closing milter connection", "remote", c.RemoteAddr().String(), "err", err)
	return err
}

// checkPacket checks what go-milter v0.10 relies on without checking it
// itself: the NUL after a CONNECT host name and after a MAIL or RCPT
// address, and the fields that follow a CONNECT host name.
func checkPacket(code byte, data []byte) error {
	switch code {
	case 'C': // host\0 family [port(2) address\0]
		host := bytes.IndexByte(data, 0)
		if host < 0 || host+1 >= len(data) {
			return fmt.Errorf("%w: CONNECT without host name and protocol family", errMalformed)
		}
		switch family, rest := data[host+1], data[host+2:]; family {
		case 'L', '4', '6':
			if len(rest) < 2 {
				return fmt.Errorf("%w: CONNECT family %q without a port", errMalformed, family)
			}
		}
	case 'M', 'R':
		if bytes.IndexByte(data, 0) < 0 {
			return fmt.Errorf("%w: %s address without its NUL", errMalformed, map[byte]string{'M': "MAIL", 'R': "RCPT"}[code])
		}
	}
	return nil
}
