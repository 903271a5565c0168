package metrics

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/relaycap/relaycap/sockets"
)

// Families are the metric families of one scrape, by name.
type Families map[string]*dto.MetricFamily

// Client reads a running relaycap's /metrics and /healthz at a listen
// address in the milter convention (unix:/path or inet:host:port).
type Client struct {
	http *http.Client
}

// NewClient returns a client for the daemon listening on listen.
func NewClient(listen string) (*Client, error) {
	network, address, err := sockets.ParseListen(listen)
	if err != nil {
		return nil, err
	}
	dial := func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, address)
	}
	return &Client{http: &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{DialContext: dial, DisableKeepAlives: true},
	}}, nil
}

// Raw returns the body of path ("/metrics", "/healthz") and the status.
func (c *Client) Raw(ctx context.Context, path string) (int, []byte, error) {
	// The host is ignored: the transport dials the configured address.
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://relaycap"+path, nil)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Accept", "text/plain; version=0.0.4")
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	return resp.StatusCode, body, err
}

// Scrape reads and parses /metrics.
func (c *Client) Scrape(ctx context.Context) (Families, error) {
	status, body, err := c.Raw(ctx, "/metrics")
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("/metrics answered %d: %s", status, body)
	}
	return Parse(body)
}

// Parse reads the Prometheus text format.
func Parse(text []byte) (Families, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(text))
	return Families(fams), err
}

// Value is the value of the one series of name whose labels include
// labels (name=value pairs); ok is false when there is none.
func (f Families) Value(name string, labels ...string) (v float64, ok bool) {
	fam := f[name]
	if fam == nil {
		return 0, false
	}
	for _, m := range fam.GetMetric() {
		if !hasLabels(m, labels) {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Untyped != nil:
			return m.Untyped.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

// Series returns the label sets and values of every series of name.
func (f Families) Series(name string) []Sample {
	var out []Sample
	for _, m := range f[name].GetMetric() {
		s := Sample{Labels: map[string]string{}}
		for _, l := range m.GetLabel() {
			s.Labels[l.GetName()] = l.GetValue()
		}
		switch {
		case m.Counter != nil:
			s.Value = m.Counter.GetValue()
		case m.Gauge != nil:
			s.Value = m.Gauge.GetValue()
		case m.Untyped != nil:
			s.Value = m.Untyped.GetValue()
		case m.Histogram != nil:
			s.Value = float64(m.Histogram.GetSampleCount())
		}
		out = append(out, s)
	}
	return out
}

// Sample is one series: its labels and value.
type Sample struct {
	Labels map[string]string
	Value  float64
}

func hasLabels(m *dto.Metric, pairs []string) bool {
	for i := 0; i+1 < len(pairs); i += 2 {
		found := false
		for _, l := range m.GetLabel() {
			if l.GetName() == pairs[i] && l.GetValue() == pairs[i+1] {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}
