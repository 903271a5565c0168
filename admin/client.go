package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/relaycap/relaycap/sockets"
)

// Client calls the admin API of a running daemon.
type Client struct {
	addr  string
	base  string
	token string
	hc    *http.Client
}

// NewClient returns a client for addr ("unix:/path" or "inet:host:port").
// A non-empty token is sent as the bearer token (for admin.listen_tcp).
func NewClient(addr, token string) (*Client, error) {
	network, address, err := sockets.ParseListen(addr)
	if err != nil {
		return nil, err
	}
	base := "http://" + address
	if network == "unix" {
		base = "http://relaycap" // the host is not used on a socket
	}
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, address)
		},
		MaxIdleConnsPerHost: 16,
	}
	return NewClientTransport(addr, base, token, tr), nil
}

// NewClientTransport returns a client that sends its requests through rt
// to base; addr only names the daemon in errors. Tests use it.
func NewClientTransport(addr, base, token string, rt http.RoundTripper) *Client {
	return &Client{addr: addr, base: base, token: token, hc: &http.Client{Transport: rt, Timeout: 30 * time.Second}}
}

// APIError is an error the daemon answered.
type APIError struct {
	Status  int
	Code    string
	Message string
}

func (e *APIError) Error() string { return e.Message }

// ErrNotRunning means nothing answered at the admin address.
var ErrNotRunning = errors.New("relaycap is not running")

func (c *Client) do(ctx context.Context, method, path string, query url.Values, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			// No socket or no listener: not running. Anything else (a
			// socket the caller may not open) says what it is.
			if errors.Is(op.Err, syscall.ENOENT) || errors.Is(op.Err, syscall.ECONNREFUSED) {
				return fmt.Errorf("%w (nothing answers on %s: %v)", ErrNotRunning, c.addr, op.Err)
			}
			return fmt.Errorf("cannot reach the daemon at %s: %v", c.addr, op.Err)
		}
		return fmt.Errorf("admin API at %s: %w", c.addr, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("admin API at %s: reading the answer: %w", c.addr, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e Error
		if json.Unmarshal(data, &e) != nil || e.Code == "" {
			return &APIError{Status: resp.StatusCode, Code: CodeInternal,
				Message: fmt.Sprintf("admin API answered %s: %s", resp.Status, strings.TrimSpace(string(data)))}
		}
		return &APIError{Status: resp.StatusCode, Code: e.Code, Message: e.Message}
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("admin API at %s: answer: %w", c.addr, err)
	}
	return nil
}

func accountPath(name string, rest ...string) string {
	p := "/v1/accounts/" + url.PathEscape(name)
	for _, r := range rest {
		p += "/" + r
	}
	return p
}

// PutAccount creates or updates a store-managed account.
func (c *Client) PutAccount(ctx context.Context, name string, req AccountRequest) (Account, error) {
	var out Account
	return out, c.do(ctx, http.MethodPut, accountPath(name), nil, req, &out)
}

// ShowAccount returns an account with its usage, purchases and audit.
func (c *Client) ShowAccount(ctx context.Context, name string) (AccountDetail, error) {
	var out AccountDetail
	return out, c.do(ctx, http.MethodGet, accountPath(name), nil, nil, &out)
}

// ListAccounts returns a page of accounts; status may be empty.
func (c *Client) ListAccounts(ctx context.Context, status, after string, limit int) (AccountList, error) {
	q := url.Values{}
	if status != "" {
		q.Set("status", status)
	}
	if after != "" {
		q.Set("after", after)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var out AccountList
	return out, c.do(ctx, http.MethodGet, "/v1/accounts", q, nil, &out)
}

// DeleteAccount deletes a store-managed account; its history stays.
func (c *Client) DeleteAccount(ctx context.Context, name string) (Deleted, error) {
	var out Deleted
	return out, c.do(ctx, http.MethodDelete, accountPath(name), nil, nil, &out)
}

// Purchase records a purchase (idempotent on req.PurchaseID).
func (c *Client) Purchase(ctx context.Context, name string, req PurchaseRequest) (Purchase, error) {
	var out Purchase
	return out, c.do(ctx, http.MethodPost, accountPath(name, "purchases"), nil, req, &out)
}

// SetStatus suspends, resumes or terminates an account; action is
// "suspend", "resume" or "terminate".
func (c *Client) SetStatus(ctx context.Context, name, action, reason string) (Account, error) {
	var out Account
	return out, c.do(ctx, http.MethodPost, accountPath(name, action), nil, ReasonRequest{Reason: reason}, &out)
}

// Complaint records an abuse complaint against an account.
func (c *Client) Complaint(ctx context.Context, name string, req ComplaintRequest) (Complaint, error) {
	var out Complaint
	return out, c.do(ctx, http.MethodPost, accountPath(name, "complaints"), nil, req, &out)
}

// Usage returns an account's day so far.
func (c *Client) Usage(ctx context.Context, name string) (Usage, error) {
	var out Usage
	return out, c.do(ctx, http.MethodGet, accountPath(name, "usage"), nil, nil, &out)
}

// History returns an account's last days of usage, today included.
func (c *Client) History(ctx context.Context, name string, days int) (History, error) {
	var out History
	return out, c.do(ctx, http.MethodGet, accountPath(name, "history"), url.Values{"days": {strconv.Itoa(days)}}, nil, &out)
}

// Audit returns an account's last n audit entries.
func (c *Client) Audit(ctx context.Context, name string, n int) (Audit, error) {
	var out Audit
	return out, c.do(ctx, http.MethodGet, accountPath(name, "audit"), url.Values{"limit": {strconv.Itoa(n)}}, nil, &out)
}

// Status returns the daemon at a glance.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var out Status
	err := c.do(ctx, http.MethodGet, "/v1/status", nil, nil, &out)
	return out, err
}

// Top returns the n accounts with the most relays today.
func (c *Client) Top(ctx context.Context, n int) (Top, error) {
	var out Top
	return out, c.do(ctx, http.MethodGet, "/v1/usage/top", url.Values{"n": {strconv.Itoa(n)}}, nil, &out)
}
