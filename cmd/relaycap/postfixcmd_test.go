package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPostfixConfig(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "relaycap.yaml")
	os.WriteFile(cfg, []byte("milter: {listen: unix:/srv/pf/spool/rc/m.sock}\npolicy: {listen: inet:127.0.0.1:10040}\n"), 0o644)

	out, errs, code := runCLI(t, "postfix-config", "--config", cfg, "--queue-directory", "/srv/pf/spool")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, want := range []string{
		"smtpd_milters = unix:rc/m.sock\n",
		"smtpd_recipient_restrictions = check_policy_service inet:127.0.0.1:10040\n",
		"smtpd_client_auth_rate_limit = 20\n",
		"10465     inet  n       -       y       -       -       smtpd\n",
		"  -o smtpd_hard_error_limit=1000\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	main, _, _ := runCLI(t, "postfix-config", "--config", cfg, "--main")
	if strings.Contains(main, " inet ") || !strings.Contains(main, "WARNING: outside the queue directory") {
		t.Errorf("--main (socket outside /var/spool/postfix): want main.cf lines only, with a warning:\n%s", main)
	}
	master, _, _ := runCLI(t, "postfix-config", "--config", cfg, "--master")
	if strings.Contains(master, "smtpd_milters") || !strings.Contains(master, "smtps     inet") {
		t.Errorf("--master: want master.cf entries only:\n%s", master)
	}
	sh, _, _ := runCLI(t, "postfix-config", "--config", cfg, "--postconf")
	if !strings.Contains(sh, "postconf -M 'smtp/inet=smtp inet n - y - - smtpd -o ") {
		t.Errorf("--postconf:\n%s", sh)
	}
	if _, _, code := runCLI(t, "postfix-config", "--main", "--master"); code != 2 {
		t.Errorf("--main --master: exit %d, want 2", code)
	}
	if _, _, code := runCLI(t, "postfix-config", "--config", filepath.Join(dir, "missing.yaml")); code != 2 {
		t.Errorf("missing config: exit %d, want 2", code)
	}
}
