package daemon

import (
	"strings"
	"testing"

	gomilter "github.com/d--j/go-milter"
)

// TestDryRunDeliversAndLogs: with quota.mode dry_run an account past its
// limit gets every recipient through, counted; the decision line and the
// policy service say would_refuse, the admin API's usage shows how many,
// and a suspended account is still refused.
func TestDryRunDeliversAndLogs(t *testing.T) {
	td := startDaemon(t, metricsOn+"quota: {mode: dry_run, accounts: {alice@example.com: 2, sam@example.com: {daily_limit: 9, status: suspended}}}\n")
	s := td.milterSession(t)
	s.mail("alice@example.com")
	if n, refused := s.rcpts(5); n != 5 {
		t.Fatalf("dry run accepted %d of 5 (refused %v)", n, refused)
	}
	if _, act := s.data(plainHeaders); act.Type != gomilter.ActionAccept {
		t.Fatalf("end of message: %v", act)
	}
	wantDecision(t, td.logs.String(), "alice@example.com",
		map[string]string{"accepted": "5", "refused": "0", "used": "5", "limit": "2", "result": "accept", "would_refuse": "3"})

	p := td.policyConn(t)
	if a := p.ask(rcptRequest("alice@example.com")); a != "DUNNO" {
		t.Fatalf("policy in dry run: %s", a)
	}
	if !strings.Contains(td.logs.String(), `msg="policy would refuse (dry run)" component=policy account=alice@example.com would_refuse=over_quota`) {
		t.Fatalf("no policy would_refuse line:\n%s", td.logs.String())
	}
	if a := p.ask(rcptRequest("sam@example.com")); !strings.HasPrefix(a, "REJECT 5.7.1") {
		t.Fatalf("suspended account in dry run: %s", a)
	}
	s.mail("sam@example.com")
	if n, _ := s.rcpts(1); n != 0 {
		t.Fatal("the milter let a suspended account through in dry run")
	}

	u, err := td.adminClient(t).Usage(bg, "alice@example.com")
	if err != nil || !u.DryRun || u.Used != 5 || u.WouldRefuse != 3 {
		t.Fatalf("usage: %+v %v", u, err)
	}
	f := td.scrape(t)
	want(t, f, 3, "relaycap_recipients_would_refuse_total", "service", "milter", "reason", "over_quota")
	want(t, f, 1, "relaycap_recipients_would_refuse_total", "service", "policy", "reason", "over_quota")
	want(t, f, 5, "relaycap_relays_committed_total")
}

// TestDryRunPerAccountDaemon: an account's own dry_run under an enforced
// quota.
func TestDryRunPerAccountDaemon(t *testing.T) {
	td := startDaemon(t, "quota: {accounts: {alice@example.com: {daily_limit: 1, dry_run: true}, bob@example.com: 1}}\n")
	s := td.milterSession(t)
	s.mail("alice@example.com")
	if n, _ := s.rcpts(3); n != 3 {
		t.Fatalf("alice (dry run) accepted %d of 3", n)
	}
	s.data(plainHeaders)
	s.mail("bob@example.com")
	if n, refused := s.rcpts(3); n != 1 || len(refused) != 2 || !strings.Contains(refused[0], "4.7.1") {
		t.Fatalf("bob (enforced) accepted %d, refused %v", n, refused)
	}
	s.data(plainHeaders)
	wantDecision(t, td.logs.String(), "bob@example.com", map[string]string{"accepted": "1", "refused": "2"})
	if d := decision(td.logs.String(), "bob@example.com"); d["would_refuse"] != "" {
		t.Fatalf("enforced account's decision line says would_refuse: %v", d)
	}
}
