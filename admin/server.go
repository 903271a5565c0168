package admin

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/relaycap/relaycap/quota"
)

// MaxBody is the largest request body accepted; a larger one gets 400.
const MaxBody = 64 << 10

// Options are what the server works on.
type Options struct {
	Engine   *quota.Engine
	Accounts quota.Accounts
	Logger   *slog.Logger
	// Now reads the clock; tests may pass their own.
	Now func() time.Time
	// ConfigPath names the file of the file-managed accounts in a 409.
	ConfigPath string
	// AutoSuspendAfter complaints within ComplaintWindow suspend an
	// account; 0 never does.
	AutoSuspendAfter int
	ComplaintWindow  time.Duration
	// OnAudit, if set, hears of every change written (customer events).
	OnAudit func(quota.AuditEntry)
	// Observer, if set, is told of every request answered and every
	// purchase.
	Observer Observer
	// Status, if set, answers GET /v1/status; without it that route is
	// unavailable (503).
	Status func(ctx context.Context) (Status, error)
}

// Observer is told what the API answers; the metrics package counts it.
// Calls come from every request's goroutine.
type Observer interface {
	// Answered is one request: its route pattern ("GET /v1/accounts/{name}",
	// "unmatched" for none), the HTTP status and how long it took.
	Answered(route string, status int, seconds float64)
	// Purchased is a purchase the store was asked for: result "new",
	// "replay", "conflict", "refused" (no such account, terminated) or
	// "error"; relays counts only for "new".
	Purchased(result string, todayOnly bool, relays int64)
}

type nopObserver struct{}

func (nopObserver) Answered(string, int, float64) {}
func (nopObserver) Purchased(string, bool, int64) {}

// Route is one served route with the Go types of its JSON request and
// response bodies (the openapi test compares them to openapi.yaml).
type Route struct {
	Method, Path string
	Query        []string
	Request      reflect.Type // nil: no body
	Response     reflect.Type
}

// Server answers the admin API. One Server may serve several listeners.
type Server struct {
	o      Options
	log    *slog.Logger
	mux    *http.ServeMux
	routes []Route

	// complaints serialises complaint handling, so that two complaints
	// at once both count towards the suspension.
	complaints sync.Mutex

	mu      sync.Mutex
	servers []*http.Server
	closed  bool
}

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = http.ErrServerClosed

// NewServer returns a server over o's engine and accounts store.
func NewServer(o Options) *Server {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Observer == nil {
		o.Observer = nopObserver{}
	}
	s := &Server{o: o, log: o.Logger.With("component", "admin"), mux: http.NewServeMux()}
	s.register()
	return s
}

// Routes lists what the server serves.
func (s *Server) Routes() []Route { return s.routes }

// noBody is the request type of a route that takes none.
type noBody struct{}

// call is one request as a handler sees it.
type call struct {
	r     *http.Request
	actor string
	now   time.Time
	start time.Time // the monotonic clock, for the latency metric
}

// handle registers fn for method and path. The request body, if Req is
// not noBody, is decoded strictly: at most MaxBody bytes, no unknown field,
// nothing after the JSON value.
func handle[Req, Resp any](s *Server, method, path string, query []string, fn func(*call, *Req) (Resp, error)) {
	rt := Route{Method: method, Path: path, Query: query, Response: reflect.TypeFor[Resp]()}
	if reflect.TypeFor[Req]() != reflect.TypeFor[noBody]() {
		rt.Request = reflect.TypeFor[Req]()
	}
	s.routes = append(s.routes, rt)
	s.mux.HandleFunc(method+" "+path, func(w http.ResponseWriter, r *http.Request) {
		c := &call{r: r, actor: actorOf(r.Context()), now: s.o.Now(), start: time.Now()}
		var req Req
		if rt.Request != nil {
			if err := decodeBody(w, r, &req); err != nil {
				s.fail(w, r, c, badRequest("%v", err))
				return
			}
		}
		resp, err := fn(c, &req)
		if err != nil {
			s.fail(w, r, c, err)
			return
		}
		s.reply(w, r, c, http.StatusOK, resp)
	})
}

func decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return fmt.Errorf("request body over %d bytes", MaxBody)
		}
		return fmt.Errorf("request body: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return errors.New("request body is empty; a JSON object is expected")
		}
		return fmt.Errorf("request body: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("request body: more than one JSON value")
	}
	return exactNames(data, reflect.TypeOf(v).Elem())
}

// exactNames refuses a field whose name matches one of typ's only when case
// is ignored: encoding/json accepts {"Relays": 5} for "relays", and
// DisallowUnknownFields does not see it. The request types are flat
// objects, so the top level is all there is to check.
func exactNames(data []byte, typ reflect.Type) error {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil {
		return fmt.Errorf("request body: %v", err)
	}
	known := map[string]bool{}
	for i := range typ.NumField() {
		name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
		known[name] = true
	}
	for name := range fields {
		if !known[name] {
			return fmt.Errorf("request body: json: unknown field %q", name)
		}
	}
	return nil
}

// apiError is an error with its HTTP status and code.
type apiError struct {
	status int
	code   string
	msg    string
}

func (e *apiError) Error() string { return e.msg }

func badRequest(format string, a ...any) error {
	return &apiError{http.StatusBadRequest, CodeBadRequest, fmt.Sprintf(format, a...)}
}

// classify maps the domain's errors to statuses; anything else came from
// the store and is a temporary failure (503), as on the mail path.
func classify(err error) *apiError {
	var ae *apiError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.Is(err, quota.ErrNoAccount):
		return &apiError{http.StatusNotFound, CodeNotFound, err.Error()}
	case errors.Is(err, quota.ErrTerminated):
		return &apiError{http.StatusConflict, CodeTerminated, err.Error() + ": it can only be deleted"}
	case errors.Is(err, quota.ErrPurchaseConflict):
		return &apiError{http.StatusConflict, CodePurchaseConflict, err.Error()}
	case errors.Is(err, quota.ErrNeedsLimit), errors.Is(err, quota.ErrLimitTooHigh):
		return &apiError{http.StatusBadRequest, CodeBadRequest, err.Error()}
	}
	return &apiError{http.StatusServiceUnavailable, CodeUnavailable, "store unavailable: " + err.Error()}
}

func (s *Server) fail(w http.ResponseWriter, r *http.Request, c *call, err error) {
	ae := classify(err)
	s.reply(w, r, c, ae.status, Error{Message: ae.msg, Code: ae.code})
}

func (s *Server) reply(w http.ResponseWriter, r *http.Request, c *call, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if err := json.NewEncoder(w).Encode(v); err != nil {
		s.log.Debug("writing a reply", "err", err)
	}
	level := slog.LevelInfo
	if status >= 500 {
		level = slog.LevelError
	}
	attrs := []any{"method", r.Method, "path", r.URL.Path, "status", status, "actor", c.actor}
	if p, ok := r.Context().Value(peerKey{}).(peer); ok && p.known {
		attrs = append(attrs, "uid", p.uid, "gid", p.gid, "pid", p.pid)
	}
	if status >= 400 {
		if e, ok := v.(Error); ok {
			attrs = append(attrs, "err", e.Message)
		}
	}
	s.log.Log(r.Context(), level, "admin request", attrs...)
	route, seconds := r.Pattern, 0.0
	if route == "" {
		route = "unmatched"
	}
	if !c.start.IsZero() {
		seconds = time.Since(c.start).Seconds()
	}
	s.o.Observer.Answered(route, status, seconds)
}

// ServeHTTP answers a request; paths and methods it does not know get a
// JSON 404 or 405 like every other error.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if _, pattern := s.mux.Handler(r); pattern == "" {
		c := &call{r: r, actor: actorOf(r.Context())}
		if allow := s.allowed(r.URL.Path); allow != "" {
			w.Header().Set("Allow", allow)
			s.reply(w, r, c, http.StatusMethodNotAllowed, Error{Message: r.Method + " is not served on " + r.URL.Path + "; allowed: " + allow, Code: CodeMethod})
			return
		}
		s.reply(w, r, c, http.StatusNotFound, Error{Message: "no such route: " + r.URL.Path, Code: CodeNotFound})
		return
	}
	s.mux.ServeHTTP(w, r)
}

// allowed lists the methods served on path, if any.
func (s *Server) allowed(path string) string {
	var methods []string
	for _, m := range []string{http.MethodGet, http.MethodPut, http.MethodPost, http.MethodDelete} {
		probe := &http.Request{Method: m, URL: ptrURL(path), Host: "relaycap"}
		if _, pattern := s.mux.Handler(probe); pattern != "" {
			methods = append(methods, m)
		}
	}
	return strings.Join(methods, ", ")
}

// Serve answers on ln, a unix socket: each caller is identified by its
// uid (SO_PEERCRED), which the log and the audit trail record. File
// permissions on the socket are the access control.
func (s *Server) Serve(ln net.Listener) error {
	return s.serve(ln, s)
}

// ServeToken answers on ln, typically TCP, only requests that carry
// "Authorization: Bearer <token>"; others get 401. token must not be empty.
func (s *Server) ServeToken(ln net.Listener, token []byte) error {
	if len(token) == 0 {
		return errors.New("admin: a token listener needs a token")
	}
	return s.serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), token) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="relaycap"`)
			s.log.Warn("admin request refused: missing or wrong bearer token", "remote", r.RemoteAddr, "method", r.Method, "path", r.URL.Path)
			s.reply(w, r, &call{r: r, actor: "anonymous"}, http.StatusUnauthorized, Error{Message: "missing or wrong bearer token", Code: CodeUnauthorized})
			return
		}
		s.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), tokenKey{}, true)))
	}))
}

func (s *Server) serve(ln net.Listener, h http.Handler) error {
	hs := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ConnContext:       withPeer,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	s.servers = append(s.servers, hs)
	s.mu.Unlock()
	return hs.Serve(ln)
}

// Shutdown stops every listener and waits, until ctx ends, for requests
// in flight.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	servers := s.servers
	s.mu.Unlock()
	var errs []error
	for _, hs := range servers {
		if err := hs.Shutdown(ctx); err != nil {
			errs = append(errs, err, hs.Close())
		}
	}
	return errors.Join(errs...)
}

type tokenKey struct{}

// actorOf names the caller for the audit trail: "token" over TCP, else the
// peer's uid.
func actorOf(ctx context.Context) string {
	if ctx.Value(tokenKey{}) == true {
		return "token"
	}
	if p, ok := ctx.Value(peerKey{}).(peer); ok && p.known {
		return fmt.Sprintf("uid=%d", p.uid)
	}
	return "unknown"
}
