// Command floor is the do-nothing pair that relaycap's performance is
// measured against (make bench-floor): a Postfix policy server that reads
// each request block and answers action=DUNNO, and a milter that
// negotiates what relaycap's milter negotiates (milter.Negotiation) and
// then lets everything through. Neither decides, counts or writes
// anything.
//
//	go run ./test/load/floor -policy unix:/tmp/f/policy.sock -milter unix:/tmp/f/milter.sock
package main

import (
	"bufio"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"syscall"

	gomilter "github.com/d--j/go-milter"

	"github.com/relaycap/relaycap/milter"
	"github.com/relaycap/relaycap/sockets"
)

func main() {
	policyAddr := flag.String("policy", "", "policy listen address (unix:/path or inet:host:port); empty: none")
	milterAddr := flag.String("milter", "", "milter listen address; empty: none")
	mode := flag.Uint("mode", 0o666, "mode of unix sockets")
	flag.Parse()
	if *policyAddr == "" && *milterAddr == "" {
		log.Fatal("floor: nothing to serve (-policy, -milter)")
	}
	errc := make(chan error, 2)
	if *policyAddr != "" {
		ln, err := sockets.Listen(*policyAddr, os.FileMode(*mode), "")
		if err != nil {
			log.Fatal(err)
		}
		defer ln.Close()
		go func() { errc <- servePolicy(ln) }()
	}
	if *milterAddr != "" {
		ln, err := sockets.Listen(*milterAddr, os.FileMode(*mode), "")
		if err != nil {
			log.Fatal(err)
		}
		srv := gomilter.NewServer(append(milter.Negotiation(),
			gomilter.WithMilter(func() gomilter.Milter { return gomilter.NoOpMilter{} }))...)
		defer srv.Close()
		go func() { errc <- srv.Serve(ln) }()
	}
	fmt.Println("floor: ready")
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	select {
	case <-sig:
	case err := <-errc:
		log.Fatal(err)
	}
}

func servePolicy(ln net.Listener) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go answerPolicy(c)
	}
}

// answerPolicy reads request blocks, "name=value" lines ended by an empty
// line (SMTPD_POLICY_README), and answers each with DUNNO.
func answerPolicy(c net.Conn) {
	defer c.Close()
	r := bufio.NewReaderSize(c, 4096)
	for {
		for {
			line, err := r.ReadSlice('\n')
			if err == bufio.ErrBufferFull {
				continue
			}
			if err != nil {
				return
			}
			if len(line) == 1 || (len(line) == 2 && line[0] == '\r') {
				break
			}
		}
		if _, err := c.Write([]byte("action=DUNNO\n\n")); err != nil {
			return
		}
	}
}
