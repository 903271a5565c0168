package quota

import (
	"strings"
	"testing"
	"time"
)

// TestZeroDecisionNeverAllows: a Decision nobody filled in (the value an
// error comes with) must not let a relay through, so a caller that drops
// the error refuses instead of relaying uncounted mail.
func TestZeroDecisionNeverAllows(t *testing.T) {
	var d Decision
	if d.Allowed() {
		t.Fatalf("the zero Decision (verdict %v) allows a relay", d.Verdict)
	}
	if d.Verdict.String() != "none" {
		t.Errorf("zero verdict is named %q, want none", d.Verdict)
	}
}

// TestEveryVerdictHasAName: the log line's verdict= never shows a number
// for a known verdict.
func TestEveryVerdictHasAName(t *testing.T) {
	for v := NoVerdict; v <= NotProvisioned; v++ {
		if got := v.String(); strings.HasPrefix(got, "verdict(") {
			t.Errorf("verdict %d has no name: %q", int(v), got)
		}
	}
	if got := Verdict(-1).String(); got != "verdict(-1)" {
		t.Errorf("Verdict(-1) = %q, want verdict(-1)", got)
	}
}

// TestDayClockAgreesWithDayOf walks instants across a year, its DST
// changes and midnights in zones with odd rules, in and out of order, and
// compares DayClock with DayOf and NextMidnight.
func TestDayClockAgreesWithDayOf(t *testing.T) {
	for _, zone := range []string{"America/New_York", "America/Santiago", "Australia/Lord_Howe", "Asia/Kathmandu", "UTC"} {
		loc, err := time.LoadLocation(zone)
		if err != nil {
			t.Fatal(err)
		}
		var c DayClock
		start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		for i := 0; i < 365*24*4; i++ {
			now := start.Add(time.Duration(i) * 15 * time.Minute)
			if i%7 == 3 { // now and then a step back, and a second before the quarter
				now = now.Add(-26*time.Hour - time.Second)
			}
			day, end := c.Of(now, loc)
			if day != DayOf(now, loc) || !end.Equal(NextMidnight(now, loc)) {
				t.Fatalf("%s %v: %s %v, want %s %v", zone, now, day, end, DayOf(now, loc), NextMidnight(now, loc))
			}
		}
	}
}
