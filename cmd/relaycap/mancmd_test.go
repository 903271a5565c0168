package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestManPages(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "man")
	t.Setenv("SOURCE_DATE_EPOCH", "1764547200") // 2025-12-01
	if out, errs, code := runCLI(t, "man", "--dir", dir); code != 0 || !strings.Contains(out, "man pages in") {
		t.Fatalf("exit %d: %s%s", code, out, errs)
	}
	serve, err := os.ReadFile(filepath.Join(dir, "relaycap-serve.8"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(serve), `.TH "RELAYCAP-SERVE" "8" "Dec 2025"`) || !strings.Contains(string(serve), `\fBrelaycap(1)\fP`) {
		t.Errorf("relaycap-serve.8:\n%s", serve)
	}
	root, err := os.ReadFile(filepath.Join(dir, "relaycap.1"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(root), `\fBrelaycap-serve(8)\fP`) || strings.Contains(string(root), "relaycap-serve(1)") {
		t.Errorf("relaycap.1 SEE ALSO does not point at relaycap-serve(8):\n%s", root)
	}
	// Every top-level command has its page, so commands added later get one.
	for _, c := range newRootCommand().Commands() {
		if !c.IsAvailableCommand() {
			continue
		}
		name := strings.ReplaceAll(c.CommandPath(), " ", "-") + "." + manSection(c)
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("no page for %q: %v", c.CommandPath(), err)
		}
	}
	if _, _, code := runCLI(t, "man"); code != 2 {
		t.Errorf("man without --dir: exit %d, want 2", code)
	}
	t.Setenv("SOURCE_DATE_EPOCH", "yesterday")
	if _, _, code := runCLI(t, "man", "--dir", dir); code != 2 {
		t.Errorf("bad SOURCE_DATE_EPOCH: exit %d, want 2", code)
	}
}

func TestVersionPrintsCommit(t *testing.T) {
	out, _, code := runCLI(t, "version")
	if code != 0 || out != "relaycap "+version+" (commit "+commit+")\n" {
		t.Errorf("relaycap version: exit %d, %q", code, out)
	}
}

// The shipped completions come from cobra's completion command.
func TestCompletion(t *testing.T) {
	for sh, want := range map[string]string{"bash": "# bash completion V2 for relaycap", "zsh": "#compdef relaycap", "fish": "# fish completion for relaycap"} {
		out, errs, code := runCLI(t, "completion", sh)
		if code != 0 || !strings.HasPrefix(out, want) || !strings.Contains(out, "relaycap") {
			t.Errorf("completion %s: exit %d, %.80q %s", sh, code, out, errs)
		}
	}
}
