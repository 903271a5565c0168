package daemon

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	gomilter "github.com/d--j/go-milter"
	"github.com/relaycap/relaycap/admin"
	"github.com/relaycap/relaycap/config"
	"github.com/relaycap/relaycap/idheader"
	"github.com/relaycap/relaycap/metrics"
)

const metricsOn = "metrics: {listen: \"inet:127.0.0.1:0\"}\n"

// client talks HTTP to the daemon's metrics listener.
func (td *testDaemon) metricsClient(t testing.TB) *metrics.Client {
	t.Helper()
	addr := td.MetricsAddr()
	if addr == nil {
		t.Fatal("metrics listener is off")
	}
	c, err := metrics.NewClient("inet:" + addr.String())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (td *testDaemon) scrape(t testing.TB) metrics.Families {
	t.Helper()
	f, err := td.metricsClient(t).Scrape(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (td *testDaemon) healthz(t testing.TB) (int, string) {
	t.Helper()
	status, body, err := td.metricsClient(t).Raw(context.Background(), "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	return status, string(body)
}

// want checks one series' value.
func want(t testing.TB, f metrics.Families, v float64, name string, labels ...string) {
	t.Helper()
	got, ok := f.Value(name, labels...)
	if !ok {
		t.Errorf("%s%v: no such series", name, labels)
		return
	}
	if got != v {
		t.Errorf("%s%v = %v, want %v", name, labels, got, v)
	}
}

// sumAccepted adds up the accepted= fields of every decision line.
func sumAccepted(t testing.TB, logs string) (sum, lines int) {
	t.Helper()
	for _, line := range strings.Split(logs, "\n") {
		if !strings.Contains(line, " msg=decision ") {
			continue
		}
		lines++
		for _, f := range strings.Fields(line) {
			if v, ok := strings.CutPrefix(f, "accepted="); ok {
				n, err := strconv.Atoi(v)
				if err != nil {
					t.Fatalf("decision line %q: %v", line, err)
				}
				sum += n
			}
		}
	}
	return sum, lines
}

// TestMetricsAfterScriptedTraffic drives the milter and the policy service
// through a known script and reads every counter it moved back from the
// HTTP endpoint.
func TestMetricsAfterScriptedTraffic(t *testing.T) {
	td := startDaemon(t, metricsOn+"quota: {accounts: {alice: 3, bob: 10, sus: {daily_limit: 7, status: suspended}, term: {daily_limit: 9, status: terminated}}}\n")

	// Before any traffic: every labelled series exists at 0.
	f := td.scrape(t)
	want(t, f, 0, "relaycap_relays_committed_total")
	want(t, f, 0, "relaycap_recipients_refused_total", "service", "policy", "reason", "over_quota")
	want(t, f, 0, "relaycap_messages_total", "result", "connection_lost")

	s := td.milterSession(t)
	s.mail("alice") // 2 accepted, committed
	s.rcpts(2)
	if _, act := s.data(plainHeaders); act.StopProcessing() && act.SMTPCode != 0 {
		t.Fatalf("message 1: %v", act)
	}
	s.mail("alice") // 1 accepted, 1 over quota, committed
	s.rcpts(2)
	s.data(plainHeaders)
	s.mail("sus") // 1 refused (suspended), then aborted by the next MAIL
	s.rcpts(1)
	s.mail("bob") // 2 held, then aborted
	s.rcpts(2)

	f = td.scrape(t)
	want(t, f, 1, "relaycap_milter_sessions")
	want(t, f, 2, "relaycap_reservations")
	if err := s.s.Abort(nil); err != nil {
		t.Fatal(err)
	}
	s.open = false
	s.mail("term") // refused (terminated), aborted by the next MAIL
	s.rcpts(1)
	s.mail("bob") // 1 held, then the connection is lost
	s.rcpts(1)
	s.s.Close()
	waitFor(t, "the session to end", func() bool {
		v, _ := td.scrape(t).Value("relaycap_milter_sessions")
		return v == 0
	})

	p := td.policyConn(t)
	asks := []string{rcptRequest("alice"), rcptRequest("bob"), rcptRequest("nobody"), rcptRequest("sus"),
		strings.Replace(rcptRequest("bob"), "protocol_state=RCPT", "protocol_state=DATA", 1)}
	for _, req := range asks {
		p.ask(req)
	}

	f = td.scrape(t)
	want(t, f, 3, "relaycap_relays_committed_total")
	want(t, f, 2, "relaycap_messages_total", "result", "accept")
	want(t, f, 3, "relaycap_messages_total", "result", "aborted") // sus, bob, term
	want(t, f, 1, "relaycap_messages_total", "result", "connection_lost")
	want(t, f, 0, "relaycap_messages_total", "result", "tempfail")
	want(t, f, 1, "relaycap_recipients_refused_total", "service", "milter", "reason", "over_quota")
	want(t, f, 1, "relaycap_recipients_refused_total", "service", "milter", "reason", "suspended")
	want(t, f, 1, "relaycap_recipients_refused_total", "service", "milter", "reason", "terminated")
	want(t, f, 1, "relaycap_recipients_refused_total", "service", "policy", "reason", "over_quota")
	want(t, f, 1, "relaycap_recipients_refused_total", "service", "policy", "reason", "not_provisioned")
	want(t, f, 1, "relaycap_recipients_refused_total", "service", "policy", "reason", "suspended")
	want(t, f, 2, "relaycap_policy_requests_total", "action", "dunno")
	want(t, f, 1, "relaycap_policy_requests_total", "action", "defer_if_permit")
	want(t, f, 2, "relaycap_policy_requests_total", "action", "reject")
	want(t, f, 0, "relaycap_milter_sessions")
	want(t, f, 0, "relaycap_reservations")
	want(t, f, 2, "relaycap_store_operations_total", "op", "add_usage", "result", "ok")
	want(t, f, 2, "relaycap_store_operation_duration_seconds", "op", "add_usage")
	want(t, f, 0, "relaycap_store_operations_total", "op", "usage", "result", "error")
	want(t, f, 2, "relaycap_accounts", "status", "active", "source", "file")
	want(t, f, 1, "relaycap_accounts", "status", "suspended", "source", "file")
	want(t, f, 1, "relaycap_accounts", "status", "terminated", "source", "file")
	want(t, f, 13, "relaycap_relays_sold_today") // alice 3 + bob 10
	want(t, f, 3, "relaycap_relays_used_today")
	want(t, f, 1, "relaycap_id_keys_loaded")
	want(t, f, 1, "relaycap_build_info", "version", "dev")
	want(t, f, 1, "relaycap_listener_info", "service", "milter", "address", "unix:"+filepath.Join(td.dir, "milter.sock"))
	want(t, f, 1, "relaycap_store_info", "backend", "badger")
	if v, _ := f.Value("relaycap_store_free_bytes"); v <= 0 {
		t.Errorf("relaycap_store_free_bytes = %v", v)
	}
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes"} {
		if _, ok := f.Value(name); !ok {
			t.Errorf("%s missing: the Go and process collectors are not registered", name)
		}
	}
	if sum, _ := sumAccepted(t, td.logs.String()); sum != 3 {
		t.Errorf("decision lines accept %d relays, the counter 3", sum)
	}
}

// TestRelaysCommittedEqualDecisionLines: after many concurrent sessions
// (some over quota, some aborted, some lost) the relays counter is exactly
// the sum of the decision lines' accepted, and what the store holds.
func TestRelaysCommittedEqualDecisionLines(t *testing.T) {
	const accounts, sessions, messages = 5, 16, 20
	var b strings.Builder
	b.WriteString(metricsOn + "quota: {accounts: {")
	for i := range accounts {
		fmt.Fprintf(&b, "load%d: %d, ", i, 60+i*20)
	}
	b.WriteString("}}\n")
	td := startDaemon(t, b.String())

	// Parallel subtests, so that each session may fail its own test.
	t.Run("sessions", func(t *testing.T) {
		for g := range sessions {
			t.Run(fmt.Sprint(g), func(t *testing.T) {
				t.Parallel()
				s := td.milterSession(t)
				for m := range messages {
					s.mail(fmt.Sprintf("load%d", (g+m)%accounts))
					s.rcpts(1 + (g*m)%4)
					if (g+m)%5 == 0 {
						if err := s.s.Abort(nil); err != nil {
							t.Fatal(err)
						}
						s.open = false
						continue
					}
					s.data(plainHeaders)
				}
				if g%3 == 0 {
					s.mail("load0") // lost with relays held
					s.rcpts(2)
				}
				s.s.Close()
			})
		}
	})
	waitFor(t, "every session to end", func() bool {
		v, _ := td.scrape(t).Value("relaycap_milter_sessions")
		return v == 0
	})
	f := td.scrape(t)
	committed, _ := f.Value("relaycap_relays_committed_total")
	sum, lines := sumAccepted(t, td.logs.String())
	var stored int64
	for i := range accounts {
		d, err := td.Engine().Check(context.Background(), fmt.Sprintf("load%d", i), td.clock.now())
		if err != nil {
			t.Fatal(err)
		}
		stored += d.Used
	}
	t.Logf("%d decision lines, %d relays committed", lines, sum)
	if committed != float64(sum) || int64(sum) != stored {
		t.Fatalf("relays committed %v, decision lines %d, store %d: all three must agree", committed, sum, stored)
	}
	var msgs float64
	for _, r := range []string{"accept", "refused", "tempfail", "aborted", "connection_lost"} {
		v, _ := f.Value("relaycap_messages_total", "result", r)
		msgs += v
	}
	if msgs != float64(lines) {
		t.Fatalf("relaycap_messages_total sums to %v, there are %d decision lines", msgs, lines)
	}
	want(t, f, 0, "relaycap_reservations")
	if v, _ := f.Value("relaycap_recipients_refused_total", "service", "milter", "reason", "over_quota"); v == 0 {
		t.Errorf("the load never reached a limit; it should")
	}
}

// TestConfigReloadMetrics: a good reload, a refused one and a file that
// does not load are counted, and the last one's result is kept.
func TestConfigReloadMetrics(t *testing.T) {
	td := startDaemon(t, metricsOn)
	td.reload(t, metricsOn+"quota: {accounts: {alice: 5}}\n")
	f := td.scrape(t)
	want(t, f, 1, "relaycap_config_reloads_total", "result", "success")
	want(t, f, 1, "relaycap_config_last_reload_successful")
	if v, _ := f.Value("relaycap_config_last_reload_timestamp_seconds"); v != float64(td.clock.now().Unix()) {
		t.Errorf("last reload at %v, want the clock's %d", v, td.clock.now().Unix())
	}
	err := td.ReloadFrom(func() (*config.Config, error) { return nil, errors.New("bad file") })
	if err == nil {
		t.Fatal("a failed load reloaded")
	}
	f = td.scrape(t)
	want(t, f, 1, "relaycap_config_reloads_total", "result", "failure")
	want(t, f, 0, "relaycap_config_last_reload_successful")
}

// TestHealthzFollowsTheKeys: a daemon started on a keys file that holds no
// key yet (as a package leaves it) is unhealthy, says why, and turns
// healthy once a key exists and is reloaded.
func TestHealthzFollowsTheKeys(t *testing.T) {
	const cfgBody = metricsOn + "quota: {accounts: {alice: 5}}\n"
	td := startDaemon(t, cfgBody)
	if code, body := td.healthz(t); code != http.StatusOK || body != "ok\n" {
		t.Fatalf("with a key: %d %q", code, body)
	}
	td.stop()
	keys := filepath.Join(td.dir, "id.keys")
	if err := os.WriteFile(keys, nil, 0o640); err != nil {
		t.Fatal(err)
	}
	td.start(t)
	code, body := td.healthz(t)
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "no identification key loaded from "+keys) {
		t.Fatalf("keys file emptied: %d %q, want 503 naming the file", code, body)
	}
	td.reload(t, cfgBody) // still empty: a reload leaves it unhealthy
	if code, _ := td.healthz(t); code != http.StatusServiceUnavailable {
		t.Fatalf("reloaded with the keys file still empty: %d, want 503", code)
	}
	f := td.scrape(t)
	want(t, f, 0, "relaycap_id_keys_loaded")
	s := td.milterSession(t)
	s.mail("alice")
	s.rcpts(2)
	if _, act := s.data(plainHeaders); act.SMTPCode != 451 {
		t.Fatalf("no key: %v, want 451", act)
	}
	f = td.scrape(t)
	want(t, f, 1, "relaycap_messages_total", "result", "tempfail")
	want(t, f, 0, "relaycap_relays_committed_total")
	want(t, f, 0, "relaycap_reservations")

	if _, err := idheader.Keygen(keys, nil); err != nil {
		t.Fatal(err)
	}
	td.reload(t, cfgBody)
	if code, body := td.healthz(t); code != http.StatusOK {
		t.Fatalf("after keygen and reload: %d %q, want 200", code, body)
	}
	want(t, td.scrape(t), 1, "relaycap_id_keys_loaded")

}

// TestHealthzWhenTheKeysFileGoesUnderARunningKey: a reload that finds the
// keys file emptied, or removed, keeps the running key (mail is still
// sealed with it) but /healthz answers 503 naming the file, since a restart
// would defer all authenticated mail. A key in the file and a reload make
// it 200 again.
func TestHealthzWhenTheKeysFileGoesUnderARunningKey(t *testing.T) {
	const cfgBody = metricsOn + "quota: {accounts: {alice: 5}}\n"
	td := startDaemon(t, cfgBody)
	keys := filepath.Join(td.dir, "id.keys")
	running, err := idheader.LoadKeyring(keys)
	if err != nil {
		t.Fatal(err)
	}
	reloadFile := func() error {
		return td.ReloadFrom(func() (*config.Config, error) { return config.Load(td.cfgPath, nil) })
	}
	for _, c := range []struct {
		name, says string
		spoil      func() error
	}{
		{"emptied", "holds no key", func() error { return os.WriteFile(keys, nil, 0o640) }},
		{"removed", "is missing", func() error { return os.Remove(keys) }},
	} {
		if code, body := td.healthz(t); code != http.StatusOK || body != "ok\n" {
			t.Fatalf("%s: before: %d %q, want 200 ok", c.name, code, body)
		}
		if err := c.spoil(); err != nil {
			t.Fatal(err)
		}
		if err := reloadFile(); err == nil {
			t.Fatalf("%s: a reload unloaded the running key", c.name)
		}
		code, body := td.healthz(t)
		reason := "keys file " + keys + " " + c.says + " (mail is still sealed with the key loaded before; a restart would defer all authenticated mail)"
		if code != http.StatusServiceUnavailable || !strings.Contains(body, reason) {
			t.Fatalf("%s: %d %q, want 503 %q", c.name, code, body, reason)
		}
		f := td.scrape(t)
		want(t, f, 0, "relaycap_config_last_reload_successful")
		want(t, f, 1, "relaycap_id_keys_loaded")

		s := td.milterSession(t)
		s.mail("alice")
		s.rcpts(1)
		mods, act := s.data(plainHeaders)
		if act.Type != gomilter.ActionAccept {
			t.Fatalf("%s: message with the running key: %v, want accept", c.name, act)
		}
		if token := insertedHeader(mods, "X-Relay-ID"); token == "" {
			t.Fatalf("%s: no X-Relay-ID inserted: %v", c.name, mods)
		} else if _, err := running.Open(token); err != nil {
			t.Fatalf("%s: token not sealed with the running key: %v", c.name, err)
		}

		if err := os.Remove(keys); err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Fatal(err)
		}
		if _, err := idheader.Keygen(keys, nil); err != nil {
			t.Fatal(err)
		}
		if err := reloadFile(); err != nil {
			t.Fatalf("%s: reload after keygen: %v", c.name, err)
		}
		if code, body := td.healthz(t); code != http.StatusOK || body != "ok\n" {
			t.Fatalf("%s: after keygen and reload: %d %q, want 200 ok", c.name, code, body)
		}
		want(t, td.scrape(t), 1, "relaycap_config_last_reload_successful")
		if running, err = idheader.LoadKeyring(keys); err != nil {
			t.Fatal(err)
		}
	}
}

// insertedHeader is the value of the first header named name that mods
// insert, or "".
func insertedHeader(mods []gomilter.ModifyAction, name string) string {
	for _, m := range mods {
		if m.Type == gomilter.ActionInsertHeader && m.HeaderName == name {
			return m.HeaderValue
		}
	}
	return ""
}

func TestMetricsOffByDefault(t *testing.T) {
	td := startDaemon(t, "")
	if addr := td.MetricsAddr(); addr != nil {
		t.Fatalf("metrics listen on %v with metrics.listen empty", addr)
	}
}

// TestAdminMetrics: requests over the admin socket are counted by route
// pattern and status, purchases by result, and new purchases' relays by
// kind; the store-managed account then shows in the account gauges.
func TestAdminMetrics(t *testing.T) {
	td := startDaemon(t, metricsOn)
	c := td.adminClient(t)
	ctx := context.Background()
	limit := int64(100)
	if _, err := c.PutAccount(ctx, "carol@example.com", admin.AccountRequest{DailyLimit: &limit}); err != nil {
		t.Fatal(err)
	}
	buy := admin.PurchaseRequest{Relays: 50, PurchaseID: "order-1"}
	for range 3 { // the first counts, the retries are replays
		if _, err := c.Purchase(ctx, "carol@example.com", buy); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Purchase(ctx, "carol@example.com", admin.PurchaseRequest{Relays: 7, PurchaseID: "order-1"}); err == nil {
		t.Fatal("a purchase id reused for 7 relays was accepted")
	}
	if _, err := c.Purchase(ctx, "carol@example.com", admin.PurchaseRequest{Relays: 5, PurchaseID: "topup-1", TodayOnly: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ShowAccount(ctx, "nobody@example.com"); err == nil {
		t.Fatal("showed an account that does not exist")
	}

	f := td.scrape(t)
	const purchase = "POST /v1/accounts/{name}/purchases"
	want(t, f, 4, "relaycap_admin_requests_total", "route", purchase, "code", "200")
	want(t, f, 1, "relaycap_admin_requests_total", "route", purchase, "code", "409")
	want(t, f, 1, "relaycap_admin_requests_total", "route", "GET /v1/accounts/{name}", "code", "404")
	want(t, f, 5, "relaycap_admin_request_duration_seconds", "route", purchase)
	want(t, f, 2, "relaycap_purchases_total", "result", "new")
	want(t, f, 2, "relaycap_purchases_total", "result", "replay")
	want(t, f, 1, "relaycap_purchases_total", "result", "conflict")
	want(t, f, 50, "relaycap_purchased_relays_total", "kind", "daily")
	want(t, f, 5, "relaycap_purchased_relays_total", "kind", "today_only")
	want(t, f, 1, "relaycap_accounts", "status", "active", "source", "store")
	want(t, f, 155, "relaycap_relays_sold_today") // 100 + 50 + 5 today only
	for _, s := range f.Series("relaycap_admin_requests_total") {
		if strings.Contains(s.Labels["route"], "carol") {
			t.Errorf("an account name in a route label: %v", s.Labels)
		}
	}
}
