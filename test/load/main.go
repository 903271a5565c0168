// Command load drives a running relaycap through its milter socket with
// go-milter's client, the way Postfix does: one connection per message,
// MAIL with a SASL login, RCPTs, headers, end of message. It reports
// messages per second and, given the daemon's PID, its resident memory.
//
//	go run ./test/load -milter unix:/path/milter.sock -accounts 100000 -pid 1234
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/relaycap/relaycap/sockets"
	"github.com/relaycap/relaycap/test/load/drive"
)

func main() {
	addr := flag.String("milter", "unix:./relaycap-data/milter.sock", "relaycap's milter address")
	accounts := flag.Int("accounts", 100000, "distinct logins; each sends one message")
	rcpts := flag.Int("rcpts", 1, "recipients per message")
	workers := flag.Int("c", 8, "concurrent connections")
	pid := flag.Int("pid", 0, "relaycap's PID, to report its RSS")
	flag.Parse()
	network, address, err := sockets.ParseListen(*addr)
	if err != nil {
		log.Fatal(err)
	}
	if *pid > 0 {
		fmt.Printf("rss before: %s\n", rssText(*pid))
	}
	logins := make([]string, *accounts)
	for i := range logins {
		logins[i] = fmt.Sprintf("load%06d@example.com", i+1)
	}
	res := drive.Milter(drive.NewMilterClient(network, address), logins, *rcpts, *workers)
	if res.FirstErr != nil {
		log.Print(res.FirstErr)
	}
	fmt.Printf("messages: %d accepted, %d failed, %d recipients each, %d connections\n", res.Accepted, res.Failed, *rcpts, *workers)
	fmt.Printf("elapsed: %v, %.0f messages/s\n", res.Elapsed.Round(time.Millisecond), res.Rate())
	if *pid > 0 {
		fmt.Printf("rss after: %s\n", rssText(*pid))
	}
	if res.Failed > 0 {
		os.Exit(1)
	}
}

func rssText(pid int) string {
	kb, err := drive.RSSKiB(pid)
	if err != nil {
		return err.Error()
	}
	return fmt.Sprintf("%d kB", kb)
}
