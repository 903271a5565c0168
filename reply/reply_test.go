package reply

import (
	"strings"
	"testing"
	"time"

	"github.com/relaycap/relaycap/quota"
)

func TestForDecision(t *testing.T) {
	loc, _ := time.LoadLocation("America/New_York")
	over := quota.Decision{
		Verdict: quota.OverQuota, Account: quota.Account{Name: "alice"},
		Used: 8, Reserved: 2, Limit: 10, ResetAt: time.Date(2026, 11, 28, 0, 0, 0, 0, loc),
	}
	cases := []struct {
		d      quota.Decision
		reject bool
		want   string
	}{
		{over, false, "450 4.7.1 Daily relay quota of alice exhausted (10/10 used); it resets at 2026-11-28 00:00 EST"},
		{over, true, "550 5.7.1 Daily relay quota of alice exhausted (10/10 used)"},
		{quota.Decision{Verdict: quota.Suspended, Account: quota.Account{Name: "bob"}}, false, "550 5.7.1 Account bob is suspended"},
		{quota.Decision{Verdict: quota.Terminated, Account: quota.Account{Name: "bob"}}, false, "550 5.7.1 Account bob is terminated"},
		{quota.Decision{Verdict: quota.NotProvisioned, Account: quota.Account{Name: "eve"}}, false, "550 5.7.1 Account eve has no relay quota"},
		{quota.Decision{Verdict: quota.Allowed}, false, "451 4.3.0 "},
	}
	for _, c := range cases {
		if got := ForDecision(c.d, c.reject).String(); !strings.HasPrefix(got, c.want) {
			t.Errorf("%v reject=%v: %q, want prefix %q", c.d.Verdict, c.reject, got, c.want)
		}
	}
}
