package drive

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	gomilter "github.com/d--j/go-milter"
)

// MilterResult is what a run of milter transactions did.
type MilterResult struct {
	Accepted, Failed int64
	Elapsed          time.Duration
	FirstErr         error
}

// Rate is accepted messages per second.
func (r MilterResult) Rate() float64 { return float64(r.Accepted) / r.Elapsed.Seconds() }

// NewMilterClient is a go-milter client offering what Postfix offers.
func NewMilterClient(network, addr string) *gomilter.Client {
	return gomilter.NewClient(network, addr,
		gomilter.WithActions(gomilter.OptAddHeader|gomilter.OptChangeHeader|gomilter.OptSetMacros))
}

// Milter sends one message for each login over workers concurrent
// connections, each message with rcpts recipients, and counts those
// accepted at end of message.
func Milter(client *gomilter.Client, logins []string, rcpts, workers int) MilterResult {
	var next, accepted, failed atomic.Int64
	var errOnce sync.Once
	var res MilterResult
	start := time.Now()
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(len(logins)) {
					return
				}
				if err := MilterMessage(client, logins[i], rcpts); err != nil {
					failed.Add(1)
					errOnce.Do(func() { res.FirstErr = fmt.Errorf("message of %s: %w", logins[i], err) })
					continue
				}
				accepted.Add(1)
			}
		})
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	res.Accepted, res.Failed = accepted.Load(), failed.Load()
	return res
}

// MilterMessage runs one message on a new milter connection: connect,
// HELO, MAIL with {auth_authen}, RCPTs, a Message-ID header, end of
// message. Anything but accept at the end is an error.
func MilterMessage(client *gomilter.Client, login string, rcpts int) error {
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
