package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// Webhook posts events to one URL.
type Webhook struct {
	URL    string
	Secret []byte
	// Client defaults to one with a 10 s timeout: a slow receiver holds
	// back the next delivery, never mail.
	Client *http.Client
}

// Response is what the receiver answered.
type Response struct {
	Status int
	Body   []byte // the first KiB
}

// OK reports a 2xx answer, the only one that counts as delivered.
func (r Response) OK() bool { return r.Status >= 200 && r.Status < 300 }

var defaultClient = &http.Client{Timeout: 10 * time.Second}

// Post sends ev as JSON, signed for the time now. An error means no answer
// (unreachable, timed out); a non-2xx answer is returned as a Response.
func (w Webhook) Post(ctx context.Context, ev Event, now time.Time) (Response, error) {
	body, err := json.Marshal(ev)
	if err != nil {
		return Response{}, fmt.Errorf("notify: encode event %s: %w", ev.ID, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return Response{}, fmt.Errorf("notify: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "relaycap-webhook")
	req.Header.Set(IDHeader, ev.ID)
	req.Header.Set(SignatureHeader, Sign(w.Secret, now, body))
	client := w.Client
	if client == nil {
		client = defaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return Response{}, fmt.Errorf("notify: post event %s: %w", ev.ID, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // lets the connection be reused
	return Response{Status: resp.StatusCode, Body: b}, nil
}
