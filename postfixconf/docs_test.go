package postfixconf

import (
	"os"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

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

// The packaged /etc/relaycap/relaycap.yaml is the full production config:
// it names every key the daemon knows (relaycap config defaults), so a key
// added later is documented where admins look.
func TestPackagedConfigNamesEveryKey(t *testing.T) {
	var defaults, packaged map[string]any
	if err := yaml.Unmarshal([]byte(config.DefaultYAML()), &defaults); err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal([]byte(read(t, "../packaging/relaycap.yaml")), &packaged); err != nil {
		t.Fatal(err)
	}
	want, got := keyPaths("", defaults), keyPaths("", packaged)
	for k := range want {
		if !got[k] {
			t.Errorf("packaging/relaycap.yaml lacks %s (see relaycap config defaults)", k)
		}
	}
}

func keyPaths(prefix string, m map[string]any) map[string]bool {
	out := map[string]bool{}
	for k, v := range m {
		p := prefix + k
		out[p] = true
		if sub, ok := v.(map[string]any); ok && k != "accounts" && k != "extra" {
			for q := range keyPaths(p+".", sub) {
				out[q] = true
			}
		}
	}
	return out
}
