// Command load drives a running relaycap through its milter socket with
// go-milter's client, the way Postfix does: one connection per message,
// MAIL with a SASL login, RCPTs, headers, end of message. It reports
// messages per second and, given the daemon's PID, its resident memory.
//
//	go run ./test/load -milter unix:/path/milter.sock -accounts 100000 -pid 1234
package main

import (
	"bufio"
	"flag"
	"fmt"
	"log"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	gomilter "github.com/d--j/go-milter"

	"github.com/relaycap/relaycap/config"
)

func main() {
	addr := flag.String("milter", "unix:./relaycap-data/milter.sock", "relaycap's milter address")
	accounts := flag.Int("accounts", 100000, "distinct logins; each sends one message")
	rcpts := flag.Int("rcpts", 1, "recipients per message")
	workers := flag.Int("c", 8, "concurrent connections")
	pid := flag.Int("pid", 0, "relaycap's PID, to report its RSS")
	flag.Parse()
	network, address, err := config.ParseListen(*addr)
	if err != nil {
		log.Fatal(err)
	}
	client := gomilter.NewClient(network, address,
		gomilter.WithActions(gomilter.OptAddHeader|gomilter.OptChangeHeader|gomilter.OptSetMacros))
	if *pid > 0 {
		fmt.Printf("rss before: %s\n", rss(*pid))
	}
	var next, accepted, failed atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	for range *workers {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(*accounts) {
					return
				}
				if err := send(client, fmt.Sprintf("load%06d@example.com", i), *rcpts); err != nil {
					if failed.Add(1) <= 5 {
						log.Printf("message %d: %v", i, err)
					}
					continue
				}
				accepted.Add(1)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	fmt.Printf("messages: %d accepted, %d failed, %d recipients each, %d connections\n", accepted.Load(), failed.Load(), *rcpts, *workers)
	fmt.Printf("elapsed: %v, %.0f messages/s\n", elapsed.Round(time.Millisecond), float64(accepted.Load())/elapsed.Seconds())
	if *pid > 0 {
		fmt.Printf("rss after: %s\n", rss(*pid))
	}
	if failed.Load() > 0 {
		os.Exit(1)
	}
}

func send(client *gomilter.Client, login string, rcpts int) error {
	macros := gomilter.NewMacroBag()
	s, err := client.Session(macros)
	if err != nil {
		return err
	}
	defer s.Close()
	steps := []func() (*gomilter.Action, error){
		func() (*gomilter.Action, error) { return s.Conn("load.example", gomilter.FamilyInet, 1, "192.0.2.1") },
		func() (*gomilter.Action, error) { return s.Helo("load.example") },
		func() (*gomilter.Action, error) {
			macros.Set(gomilter.MacroAuthAuthen, login)
			return s.Mail("<"+login+">", "")
		},
	}
	for i := range rcpts {
		steps = append(steps, func() (*gomilter.Action, error) {
			macros.Set(gomilter.MacroQueueId, "LOADQID")
			return s.Rcpt(fmt.Sprintf("<r%d@example.net>", i), "")
		})
	}
	steps = append(steps, s.DataStart,
		func() (*gomilter.Action, error) { return s.HeaderField("Message-ID", "<"+login+"@load>", nil) },
		s.HeaderEnd)
	for _, step := range steps {
		act, err := step()
		if err != nil {
			return err
		}
		if act.StopProcessing() {
			return fmt.Errorf("refused: %s", act.SMTPReply)
		}
	}
	_, act, err := s.BodyReadFrom(strings.NewReader("load\r\n"))
	if err != nil {
		return err
	}
	if act.Type != gomilter.ActionAccept {
		return fmt.Errorf("end of message: %v", act)
	}
	return nil
}

// rss reads VmRSS from /proc.
func rss(pid int) string {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}
