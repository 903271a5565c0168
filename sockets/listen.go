// Package sockets opens relaycap's listeners from addresses in the milter
// convention ("unix:/path", "inet:host:port"), giving unix sockets the mode
// and group Postfix needs to connect.
package sockets

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/user"
	"strconv"
	"time"
)

// Listen opens addr. A unix socket gets mode and, if group is not empty,
// that group. A stale socket file left by a crash is replaced; one that a
// live process still answers on is an error.
func Listen(addr string, mode fs.FileMode, group string) (net.Listener, error) {
	network, address, err := ParseListen(addr)
	if err != nil {
		return nil, err
	}
	if network != "unix" {
		return net.Listen(network, address)
	}
	if err := removeStale(address); err != nil {
		return nil, err
	}
	ln, err := net.Listen("unix", address)
	if err != nil {
		return nil, err
	}
	// A new socket carries the umask's mode (0755 for root): nobody else
	// may connect until the chmod, so widening it afterwards is safe.
	if err := setOwnership(address, mode, group); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("%s exists and is not a socket", path)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return fmt.Errorf("%s: another process is listening on it", path)
	}
	return os.Remove(path)
}

func setOwnership(path string, mode fs.FileMode, group string) error {
	if group != "" {
		g, err := user.LookupGroup(group)
		if err != nil {
			return fmt.Errorf("socket group: %w", err)
		}
		gid, _ := strconv.Atoi(g.Gid)
		if err := os.Lchown(path, -1, gid); err != nil {
			return fmt.Errorf("socket %s: %w", path, err)
		}
	}
	if err := os.Chmod(path, mode); err != nil {
		return fmt.Errorf("socket %s: %w", path, err)
	}
	return nil
}
