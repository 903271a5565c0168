package policy

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/relaycap/relaycap/internal/syncutil"
	"github.com/relaycap/relaycap/quota"
	"github.com/relaycap/relaycap/reply"
)

// Settings are what the service decides with besides the engine; swapped
// as a whole on reload.
type Settings struct {
	// OverQuotaReject answers an exhausted quota with REJECT instead of
	// DEFER_IF_PERMIT.
	OverQuotaReject bool
}

// Options configure a Server.
type Options struct {
	Logger *slog.Logger
	Now    func() time.Time // nil: time.Now
	// ReadTimeout ends a connection idle this long; zero means never, as
	// in net/http. Postfix keeps policy connections open for reuse
	// (smtpd_policy_service_max_idle, 300 s) and reconnects when we close
	// one. The daemon passes policy.read_timeout: its default lives in
	// config's defaults table, not here.
	ReadTimeout time.Duration
	// Events, if set, hears of refusals (customer events).
	Events quota.Events
	// Observer, if set, is told of every answer and refusal.
	Observer Observer
}

// Observer is told what the service answers; the metrics package counts
// it. Calls come from every connection's goroutine.
type Observer interface {
	// Answered is a reply's action in lower case: "dunno",
	// "defer_if_permit" or "reject".
	Answered(action string)
	// Refused is a recipient refused: a quota verdict or "tempfail".
	Refused(reason string)
	// WouldRefuse is a recipient answered DUNNO in dry run that enforcing
	// would have refused with the verdict reason.
	WouldRefuse(reason string)
}

type nopObserver struct{}

func (nopObserver) Answered(string)    {}
func (nopObserver) Refused(string)     {}
func (nopObserver) WouldRefuse(string) {}

// Server serves the policy protocol.
type Server struct {
	engine   *quota.Engine
	log      *slog.Logger
	obs      Observer
	now      func() time.Time // nil: the clock serveConn reads anyway
	timeout  time.Duration
	settings atomic.Pointer[Settings]
	events   quota.Events // nil: none

	// closing is set under mu, and read without it on every request.
	closing atomic.Bool

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[net.Conn]struct{}
	wg        sync.WaitGroup
}

// ErrServerClosed is returned by Serve after Shutdown or Close.
var ErrServerClosed = errors.New("policy: server closed")

// NewServer returns a policy server over engine.
func NewServer(engine *quota.Engine, set Settings, o Options) *Server {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Observer == nil {
		o.Observer = nopObserver{}
	}
	s := &Server{
		engine: engine, log: o.Logger.With("component", "policy"), now: o.Now, timeout: o.ReadTimeout, events: o.Events, obs: o.Observer,
		listeners: map[net.Listener]struct{}{}, conns: map[net.Conn]struct{}{},
	}
	s.SetSettings(set)
	return s
}

// SetSettings swaps the settings in.
func (s *Server) SetSettings(set Settings) { s.settings.Store(&set) }

// Serve accepts connections on ln until Shutdown or Close.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closing.Load() {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	for {
		conn, err := ln.Accept()
		if err != nil {
			if s.closing.Load() {
				return ErrServerClosed
			}
			if isTimeout(err) {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			return err
		}
		s.mu.Lock()
		if s.closing.Load() {
			s.mu.Unlock()
			conn.Close()
			return ErrServerClosed
		}
		s.conns[conn] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serveConn(conn)
	}
}

// Shutdown closes the listeners, lets each connection finish the request it
// is answering, and closes idle ones; it returns when all are gone or ctx
// ends, then closes what is left.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing.Store(true)
	for ln := range s.listeners {
		ln.Close()
	}
	// Between requests a connection is idle; a short deadline ends its
	// read while a request being answered still gets its reply out.
	for c := range s.conns {
		c.SetReadDeadline(time.Now())
	}
	s.mu.Unlock()
	if err := s.Wait(ctx); err != nil {
		s.Close()
		return err
	}
	return nil
}

// Wait returns when every connection has ended (after Shutdown or Close),
// or when ctx ends.
func (s *Server) Wait(ctx context.Context) error { return syncutil.Wait(ctx, &s.wg) }

// Close closes listeners and connections at once.
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closing.Store(true)
	for ln := range s.listeners {
		ln.Close()
	}
	for c := range s.conns {
		c.Close()
	}
	return nil
}

func (s *Server) serveConn(conn net.Conn) {
	defer func() {
		// Like the milter's guard: one connection ends (Postfix answers
		// with its default action, 451 4.3.5), the daemon goes on, and the
		// stack says where it broke.
		if r := recover(); r != nil {
			s.log.Error("panic in policy connection", "panic", r, "stack", string(debug.Stack()))
		}
		conn.Close()
		s.mu.Lock()
		delete(s.conns, conn)
		s.mu.Unlock()
		s.wg.Done()
	}()
	r := NewReader(conn)
	// Pushing a deadline out is a timer update; a connection carries
	// thousands of requests a second under load, so each deadline moves
	// only once an eighth of its timeout has passed since it last did:
	// an idle wait still gets at least 7/8 of policy.read_timeout, a
	// reply 7/8 of replyTimeout. The clock is read once per request, after
	// its read (a clock read costs more than the rest of this loop): the
	// next read's deadline is judged by that reading, microseconds old.
	var readArmed, writeArmed time.Time
	now := time.Now()
	for {
		// The deadline first, then the check: Shutdown sets closing before
		// its "stop reading now" deadline, so either this sees closing or
		// Shutdown's deadline comes after this one and wins. A connection
		// that was answering when Shutdown came ends after its reply.
		if s.timeout > 0 && now.Sub(readArmed) >= s.timeout/8 {
			conn.SetReadDeadline(now.Add(s.timeout))
			readArmed = now
		}
		if s.closing.Load() {
			return
		}
		req, err := r.Read()
		if err != nil {
			if errors.Is(err, ErrMalformed) {
				// No reply: Postfix treats a broken policy connection as
				// a temporary failure (451 4.3.5) and retries later.
				s.log.Warn("closing policy connection: bad request", "remote", conn.RemoteAddr().String(), "err", err)
			} else if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !isTimeout(err) {
				s.log.Warn("policy connection read failed", "err", err)
			}
			return
		}
		now = time.Now()
		if now.Sub(writeArmed) >= replyTimeout/8 {
			conn.SetWriteDeadline(now.Add(replyTimeout))
			writeArmed = now
		}
		at := now
		if s.now != nil {
			at = s.now()
		}
		if _, err := conn.Write(s.decide(req, at)); err != nil {
			s.log.Warn("policy reply failed", "err", err)
			return
		}
	}
}

// replyTimeout bounds the write of one reply.
const replyTimeout = 30 * time.Second

// dunno is the reply that leaves the decision to Postfix's other rules.
var dunno = []byte("action=DUNNO\n\n")

// decide answers one request at now with an access(5) action, as the
// reply block.
func (s *Server) decide(req Request, now time.Time) []byte {
	login := req.SASLUsername
	if !strings.EqualFold(req.ProtocolState, "RCPT") || login == "" {
		s.obs.Answered("dunno")
		return dunno
	}
	d, err := s.engine.Check(context.Background(), login, now)
	if err != nil {
		s.log.Error("policy check failed", "account", login, "err", err)
		s.obs.Refused("tempfail")
		return block(s.action(reply.TemporaryFailure()))
	}
	if d.Allowed() {
		if d.WouldRefuse != quota.NoVerdict {
			s.obs.WouldRefuse(d.WouldRefuse.String())
			s.log.Info("policy would refuse (dry run)", "account", d.Account.Name, "would_refuse", d.WouldRefuse.String(),
				"queue_id", req.QueueID, "recipient", req.Recipient, "used", d.Used, "reserved", d.Reserved, "limit", d.Limit)
		}
		s.obs.Answered("dunno")
		return dunno
	}
	s.log.Info("policy refused", "account", d.Account.Name, "verdict", d.Verdict.String(),
		"queue_id", req.QueueID, "recipient", req.Recipient, "used", d.Used, "reserved", d.Reserved, "limit", d.Limit)
	if s.events != nil {
		s.events.Refused(d, now)
	}
	s.obs.Refused(d.Verdict.String())
	return block(s.action(reply.ForDecision(d, s.settings.Load().OverQuotaReject)))
}

// block is the reply block of one action.
func block(action string) []byte { return []byte("action=" + action + "\n\n") }

// action renders a refusal as an access(5) action. The SMTP code is left
// to Postfix (access_map_defer_code, access_map_reject_code); the enhanced
// status and the text are ours.
func (s *Server) action(r reply.Reply) string {
	if r.Temporary() {
		s.obs.Answered("defer_if_permit")
		return "DEFER_IF_PERMIT " + r.Status + " " + r.Text
	}
	s.obs.Answered("reject")
	return "REJECT " + r.Status + " " + r.Text
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
