package daemon

import (
	"strings"
	"testing"

	"github.com/relaycap/relaycap/admin"
)

// TestAccountCacheMissesNoAdminChange: the daemon answers account lookups
// from memory, yet every change through the admin API applies to the very
// next policy request on a connection whose earlier requests filled the
// cache: suspension, resumption, a purchase, a deletion, a creation over a
// login cached as unknown.
func TestAccountCacheMissesNoAdminChange(t *testing.T) {
	td := startDaemon(t, "")
	c := td.adminClient(t)
	p := td.policyConn(t)
	ask := func(step, want string) {
		t.Helper()
		for range 2 { // the second answer comes from the cache
			if got := p.ask(rcptRequest("carol@example.com")); !strings.HasPrefix(got, want) {
				t.Fatalf("%s: %q, want %s…", step, got, want)
			}
		}
	}
	ask("unknown login", "REJECT 5.7.1 ")
	provision(t, c, "carol@example.com", 1)
	ask("created", "DUNNO")
	if _, err := c.SetStatus(bg, "carol@example.com", "suspend", "complaint"); err != nil {
		t.Fatal(err)
	}
	ask("suspended", "REJECT 5.7.1 ")
	if _, err := c.SetStatus(bg, "carol@example.com", "resume", "resolved"); err != nil {
		t.Fatal(err)
	}
	ask("resumed", "DUNNO")
	s := td.milterSession(t)
	s.mail("carol@example.com")
	if n, _ := s.rcpts(1); n != 1 {
		t.Fatal("the one relay was refused")
	}
	ask("limit reserved", "DEFER_IF_PERMIT 4.7.1 ")
	if _, err := c.Purchase(bg, "carol@example.com", admin.PurchaseRequest{Relays: 1, PurchaseID: "ord-7"}); err != nil {
		t.Fatal(err)
	}
	ask("after the purchase", "DUNNO")
	if _, err := c.DeleteAccount(bg, "carol@example.com"); err != nil {
		t.Fatal(err)
	}
	ask("deleted", "REJECT 5.7.1 ")
}
