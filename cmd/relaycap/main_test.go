package main

import (
	"strings"
	"testing"
)

// TestUsageErrorsExit2: a missing or mistyped command or a stray argument
// exits 2 (systemd's RestartPreventExitStatus=2 stops a unit with such a
// typo instead of restarting it), and never 0.
func TestUsageErrorsExit2(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"bogus"},
		{"config"},
		{"config", "chek"},
		{"config", "check", "extra"},
		{"serve", "/etc/relaycap/relaycap.yaml"},
		{"serve", "--no-such-flag"},
		{"version", "x"},
		{"id"},
		{"id", "bogus"},
	} {
		_, stderr, code := runCLI(t, args...)
		if code != 2 {
			t.Errorf("relaycap %s: exit %d, want 2 (%s)", strings.Join(args, " "), code, stderr)
		}
	}
	if out, _, code := runCLI(t, "version"); code != 0 || !strings.HasPrefix(out, "relaycap ") {
		t.Errorf("relaycap version: exit %d, %q", code, out)
	}
}
