package quota

import (
	"strings"
	"testing"
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
