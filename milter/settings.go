// Package milter is relaycap's milter: the accounting authority. It reserves
// one relay per recipient at RCPT, commits the message's relays at end of
// message before it answers accept, releases them on abort, and stamps each
// counted message with the identification header. It adapts
// github.com/d--j/go-milter to the quota engine; the engine decides.
package milter

import "time"

// Header is one header field the milter adds to every counted message.
type Header struct {
	Name, Value string
}

// Stamp is what the identification token of one message names.
type Stamp struct {
	Account    string
	Time       time.Time
	QueueID    string
	ClientAddr string
	Recipients int
	MessageID  string
}

// SealFunc turns a stamp into the identification header's value. An error
// defers the message: relaycap never relays a counted message without it.
type SealFunc func(Stamp) (string, error)

// Observer is told what the milter decides; the metrics package counts
// it. Calls come from every session's goroutine.
type Observer interface {
	SessionOpened()
	SessionClosed()
	// Held changes the relays reserved by open transactions by n.
	Held(n int64)
	// Refused is a recipient refused: a quota verdict, "tempfail", or
	// "unauthenticated" for a MAIL refused for want of a login.
	Refused(reason string)
	// Decided is a message's decision line: its result and the relays
	// committed (0 unless result is "accept").
	Decided(result string, accepted int64)
	// WouldRefuse is a recipient let through in dry run that enforcing
	// would have refused with the verdict reason.
	WouldRefuse(reason string)
}

// nopObserver is the Observer of a server given none.
type nopObserver struct{}

func (nopObserver) SessionOpened()        {}
func (nopObserver) SessionClosed()        {}
func (nopObserver) Held(int64)            {}
func (nopObserver) Refused(string)        {}
func (nopObserver) Decided(string, int64) {}
func (nopObserver) WouldRefuse(string)    {}

// Settings are what the milter decides with besides the engine. They are
// swapped as a whole on reload; a transaction keeps the settings it began
// with.
type Settings struct {
	// OverQuotaReject answers an exhausted quota with 550 5.7.1 instead of
	// 450 4.7.1.
	OverQuotaReject bool
	// RejectUnauthenticated refuses mail without a SASL login at MAIL
	// instead of passing it untouched.
	RejectUnauthenticated bool
	// IDHeader is the identification header's name. Client-supplied copies
	// are removed from every message, authenticated or not.
	IDHeader string
	// Extra headers are added with the token, after client copies of them
	// are removed.
	Extra []Header
	// Seal makes the token. Nil defers every counted message.
	Seal SealFunc
}
