package milter

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	gomilter "github.com/d--j/go-milter"

	"github.com/relaycap/relaycap/internal/syncutil"
	"github.com/relaycap/relaycap/quota"
)

// Server is relaycap's milter server.
type Server struct {
	engine   *quota.Engine
	log      *slog.Logger
	obs      Observer
	now      func() time.Time
	settings atomic.Pointer[Settings]
	events   quota.Events // nil: none
	srv      *gomilter.Server
	// sessions counts the callbacks' owners: go-milter's Close ends the
	// connections but does not wait for their goroutines, and the store
	// must outlive every session that may still commit.
	sessions sync.WaitGroup
}

// Options configure a Server.
type Options struct {
	Logger *slog.Logger
	// Now reads the clock; tests pass a fixed one.
	Now func() time.Time
	// ReadTimeout must outlast the longest pause of an SMTP client inside a
	// transaction, body included (we do not ask for the body).
	ReadTimeout  time.Duration
	WriteTimeout time.Duration
	// Events, if set, hears of commits and refusals (customer events).
	Events quota.Events
	// Observer, if set, is told of sessions, reservations, refusals and
	// decisions.
	Observer Observer
}

// NewServer returns a milter server over engine.
func NewServer(engine *quota.Engine, set Settings, o Options) *Server {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Observer == nil {
		o.Observer = nopObserver{}
	}
	s := &Server{engine: engine, log: o.Logger.With("component", "milter"), now: o.Now, obs: o.Observer, events: o.Events}
	s.SetSettings(set)
	opts := append(Negotiation(),
		gomilter.WithMilter(func() gomilter.Milter {
			s.sessions.Add(1) // go-milter calls Cleanup for every milter it makes
			s.obs.SessionOpened()
			return guard{s: &session{srv: s}, log: s.log}
		}),
		gomilter.WithReadTimeout(o.ReadTimeout),
		gomilter.WithWriteTimeout(o.WriteTimeout),
	)
	s.srv = gomilter.NewServer(opts...)
	return s
}

// Negotiation is what relaycap asks of the MTA: the header actions, the
// protocol steps it does without, and the macros of each stage. The
// do-nothing milter of test/load negotiates the same, so that the floor
// it measures costs the MTA what relaycap's negotiation costs.
func Negotiation() []gomilter.Option {
	return []gomilter.Option{
		gomilter.WithActions(gomilter.OptAddHeader | gomilter.OptChangeHeader),
		// We need no HELO and no body; the header is needed for forged
		// copies of our headers and the Message-ID. No replies to header
		// events saves a round trip per header line.
		gomilter.WithProtocols(gomilter.OptNoHelo | gomilter.OptNoBody | gomilter.OptNoUnknown | gomilter.OptNoData | gomilter.OptNoHeaderReply | gomilter.OptNoEOH),
		// Ask for what we use instead of trusting the MTA's defaults
		// (milter_mail_macros etc. can be changed by the admin).
		gomilter.WithMacroRequest(gomilter.StageMail, []string{gomilter.MacroAuthAuthen, gomilter.MacroAuthType}),
		gomilter.WithMacroRequest(gomilter.StageRcpt, []string{gomilter.MacroQueueId}),
		gomilter.WithMacroRequest(gomilter.StageEOM, []string{gomilter.MacroQueueId}),
	}
}

// LogLibraryWarnings routes go-milter's warnings (a broken packet, a lost
// peer) to log. go-milter reports them through one process-wide variable,
// so a process calls this once, before serving; the daemon does.
func LogLibraryWarnings(log *slog.Logger) {
	gomilter.LogWarning = func(format string, v ...any) { log.Warn(fmt.Sprintf(format, v...)) }
}

// SetSettings swaps the settings; transactions already begun keep theirs.
func (s *Server) SetSettings(set Settings) { s.settings.Store(&set) }

// Serve accepts milter connections on ln until Shutdown or Close.
func (s *Server) Serve(ln net.Listener) error {
	return s.srv.Serve(checkedListener{Listener: ln, log: s.log})
}

// Shutdown stops accepting and waits for open connections until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error { return s.srv.Shutdown(ctx) }

// Close closes the listeners and every connection at once; Cleanup then
// releases the reservations of unfinished messages.
func (s *Server) Close() error { return s.srv.Close() }

// Wait returns when every session has ended (after Shutdown or Close), or
// when ctx ends.
func (s *Server) Wait(ctx context.Context) error { return syncutil.Wait(ctx, &s.sessions) }

// guard keeps a panic in a callback from taking the daemon down: the
// connection ends with a temporary failure and Cleanup releases what the
// session held. go-milter does not recover panics itself.
type guard struct {
	s   *session
	log *slog.Logger
}

func (g guard) recover(stage string, resp **gomilter.Response, err *error) {
	if r := recover(); r != nil {
		g.log.Error("panic in milter callback", "stage", stage, "panic", r, "stack", string(debug.Stack()))
		*resp, *err = gomilter.RespTempFail, fmt.Errorf("panic in %s: %v", stage, r)
	}
}

func (g guard) NewConnection(m gomilter.Modifier) (err error) {
	var resp *gomilter.Response
	defer g.recover("connection", &resp, &err)
	return g.s.NewConnection(m)
}

func (g guard) Connect(host, family string, port uint16, addr string, m gomilter.Modifier) (resp *gomilter.Response, err error) {
	defer g.recover("connect", &resp, &err)
	return g.s.Connect(host, family, port, addr, m)
}

func (g guard) Helo(name string, m gomilter.Modifier) (resp *gomilter.Response, err error) {
	defer g.recover("helo", &resp, &err)
	return g.s.Helo(name, m)
}

func (g guard) MailFrom(from, args string, m gomilter.Modifier) (resp *gomilter.Response, err error) {
	defer g.recover("mail", &resp, &err)
	return g.s.MailFrom(from, args, m)
}

func (g guard) RcptTo(rcpt, args string, m gomilter.Modifier) (resp *gomilter.Response, err error) {
	defer g.recover("rcpt", &resp, &err)
	return g.s.RcptTo(rcpt, args, m)
}

func (g guard) Data(m gomilter.Modifier) (resp *gomilter.Response, err error) {
	defer g.recover("data", &resp, &err)
	return g.s.Data(m)
}

func (g guard) Header(name, value string, m gomilter.Modifier) (resp *gomilter.Response, err error) {
	defer g.recover("header", &resp, &err)
	return g.s.Header(name, value, m)
}

func (g guard) Headers(m gomilter.Modifier) (resp *gomilter.Response, err error) {
	defer g.recover("eoh", &resp, &err)
	return g.s.Headers(m)
}

func (g guard) BodyChunk(chunk []byte, m gomilter.Modifier) (resp *gomilter.Response, err error) {
	defer g.recover("body", &resp, &err)
	return g.s.BodyChunk(chunk, m)
}

func (g guard) EndOfMessage(m gomilter.Modifier) (resp *gomilter.Response, err error) {
	defer g.recover("eom", &resp, &err)
	return g.s.EndOfMessage(m)
}

func (g guard) Abort(m gomilter.Modifier) (err error) {
	var resp *gomilter.Response
	defer g.recover("abort", &resp, &err)
	return g.s.Abort(m)
}

func (g guard) Unknown(cmd string, m gomilter.Modifier) (resp *gomilter.Response, err error) {
	defer g.recover("unknown", &resp, &err)
	return g.s.Unknown(cmd, m)
}

func (g guard) Cleanup(m gomilter.Modifier) {
	var (
		resp *gomilter.Response
		err  error
	)
	defer g.s.srv.sessions.Done()
	defer g.s.srv.obs.SessionClosed()
	defer g.recover("cleanup", &resp, &err)
	g.s.Cleanup(m)
}

// ErrServerClosed is returned by Serve after Shutdown or Close.
var ErrServerClosed = gomilter.ErrServerClosed
