package postfixconf

import (
	"os"
	"strings"
	"testing"

	"github.com/relaycap/relaycap/config"
)

// The README's wiring section shows exactly what `relaycap postfix-config`
// prints for the packaged config, and the e2e sandbox's Dovecot uses the
// packaged snippet's auth_failure_delay: what is documented is what runs.
func TestREADMEShowsTheGeneratedLines(t *testing.T) {
	readme := read(t, "../README.md")
	cfg, err := config.Load("../packaging/relaycap.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	main, err := Main(FromConfig(cfg, DefaultQueueDirectory))
	if err != nil {
		t.Fatal(err)
	}
	for name, block := range map[string]string{"main.cf": main, "master.cf": Master()} {
		if !strings.Contains(readme, "```\n"+block+"```\n") {
			t.Errorf("README.md has no code block equal to the generated %s lines (relaycap postfix-config --%s -c packaging/relaycap.yaml):\n%s",
				name, strings.TrimSuffix(name, ".cf"), block)
		}
	}
	const delay = "auth_failure_delay = 2 secs\n"
	for _, f := range []string{"../packaging/dovecot-auth.conf", "../test/e2e/testdata/dovecot.conf.tmpl", "../README.md"} {
		if !strings.Contains(read(t, f), delay) {
			t.Errorf("%s lacks %q", f, delay)
		}
	}
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
