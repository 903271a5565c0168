// Package drive is the client side of relaycap's load tools: policy
// requests as Postfix's smtpd sends them on persistent connections, and
// milter transactions as Postfix's cleanup sends them, one connection per
// message.
package drive

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// PolicyRequest is a Postfix 3.7 RCPT-state request (SMTPD_POLICY_README,
// "Protocol description") for a SASL-authenticated login over TLS: all
// 31 attributes Postfix sends, so a reader's cost per attribute counts.
func PolicyRequest(login string, rcpt int) []byte {
	return fmt.Appendf(nil, "request=smtpd_access_policy\nprotocol_state=RCPT\nprotocol_name=ESMTP\n"+
		"client_address=192.0.2.7\nclient_name=unknown\nclient_port=54321\nreverse_client_name=unknown\n"+
		"server_address=127.0.0.1\nserver_port=587\nhelo_name=client.example\nsender=%[1]s\n"+
		"recipient=rcpt-%[2]d@remote.example\nrecipient_count=0\nqueue_id=\ninstance=2b5e.6744f1a2.8c1d3.0\n"+
		"size=0\netrn_domain=\nstress=\nsasl_method=PLAIN\nsasl_username=%[1]s\nsasl_sender=\n"+
		"ccert_subject=\nccert_issuer=\nccert_fingerprint=\nccert_pubkey_fingerprint=\n"+
		"encryption_protocol=TLSv1.3\nencryption_cipher=TLS_AES_256_GCM_SHA384\nencryption_keysize=256\n"+
		"policy_context=\ncompatibility_level=3.6\nmail_version=3.7.11\n\n", login, rcpt)
}

// PolicyResult is what one timed run of policy requests did.
type PolicyResult struct {
	Requests int64
	Elapsed  time.Duration
	// Unexpected counts replies other than want; FirstUnexpected shows one.
	Unexpected      int64
	FirstUnexpected string
}

// Rate is requests per second.
func (r PolicyResult) Rate() float64 { return float64(r.Requests) / r.Elapsed.Seconds() }

// Policy sends requests over conns persistent connections to network/addr
// for d, cycling through logins, and checks every reply is want (such as
// "action=DUNNO"). Each connection waits for its reply before it sends
// the next request, as Postfix's smtpd does.
func Policy(ctx context.Context, network, addr string, conns int, d time.Duration, logins []string, want string) (PolicyResult, error) {
	reqs := make([][]byte, len(logins))
	for i, l := range logins {
		reqs[i] = PolicyRequest(l, i)
	}
	wantReply := []byte(want + "\n\n")
	cs := make([]net.Conn, conns)
	for i := range cs {
		c, err := net.Dial(network, addr)
		if err != nil {
			for _, c := range cs[:i] {
				c.Close()
			}
			return PolicyResult{}, err
		}
		cs[i] = c
	}
	var (
		total, unexpected atomic.Int64
		first             atomic.Value
		errOnce           sync.Once
		firstErr          error
		wg                sync.WaitGroup
	)
	stop := make(chan struct{})
	start := time.Now()
	for i, c := range cs {
		wg.Go(func() {
			defer c.Close()
			r := bufio.NewReader(c)
			reply := make([]byte, 0, 256)
			for n := i * 7919; ; n++ {
				select {
				case <-stop:
					return
				case <-ctx.Done():
					return
				default:
				}
				c.SetDeadline(time.Now().Add(10 * time.Second))
				if _, err := c.Write(reqs[n%len(reqs)]); err != nil {
					errOnce.Do(func() { firstErr = err })
					return
				}
				reply = reply[:0]
				for {
					line, err := r.ReadSlice('\n')
					if err != nil {
						errOnce.Do(func() { firstErr = fmt.Errorf("policy reply: %w", err) })
						return
					}
					reply = append(reply, line...)
					if len(line) == 1 {
						break
					}
				}
				total.Add(1)
				if !bytes.Equal(reply, wantReply) {
					if unexpected.Add(1) == 1 {
						first.Store(string(reply))
					}
				}
			}
		})
	}
	select {
	case <-time.After(d):
	case <-ctx.Done():
	}
	close(stop)
	elapsed := time.Since(start)
	wg.Wait()
	res := PolicyResult{Requests: total.Load(), Elapsed: elapsed, Unexpected: unexpected.Load()}
	if s, ok := first.Load().(string); ok {
		res.FirstUnexpected = s
	}
	if firstErr != nil {
		return res, firstErr
	}
	return res, ctx.Err()
}
