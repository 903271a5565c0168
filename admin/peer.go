package admin

import (
	"context"
	"net"
	"net/url"
)

// peer is the process at the other end of a unix socket.
type peer struct {
	known         bool
	uid, gid, pid int
}

type peerKey struct{}

// withPeer records the peer's credentials (SO_PEERCRED, taken by the
// kernel at connect time) in the connection's context.
func withPeer(ctx context.Context, c net.Conn) context.Context {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return ctx
	}
	return context.WithValue(ctx, peerKey{}, peerOf(uc))
}

func ptrURL(path string) *url.URL { return &url.URL{Path: path} }
