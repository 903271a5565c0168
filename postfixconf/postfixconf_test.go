package postfixconf

import (
	"strings"
	"testing"
)

func TestClientAddr(t *testing.T) {
	for _, c := range []struct {
		listen, queue, want string
		inside              bool
	}{
		{"unix:/var/spool/postfix/relaycap/milter.sock", "", "unix:relaycap/milter.sock", true},
		{"unix:/srv/pf/spool/relaycap/p.sock", "/srv/pf/spool/", "unix:relaycap/p.sock", true},
		{"unix:/run/relaycap/milter.sock", "", "unix:/run/relaycap/milter.sock", false},
		{"unix:/var/spool/postfix-other/x.sock", "", "unix:/var/spool/postfix-other/x.sock", false},
		{"inet:127.0.0.1:10032", "", "inet:127.0.0.1:10032", true},
	} {
		got, inside, err := ClientAddr(c.listen, c.queue)
		if err != nil || got != c.want || inside != c.inside {
			t.Errorf("ClientAddr(%q, %q) = %q, %v, %v; want %q, %v", c.listen, c.queue, got, inside, err, c.want, c.inside)
		}
	}
	if _, _, err := ClientAddr("tcp:1.2.3.4:5", ""); err == nil {
		t.Error("ClientAddr accepted tcp:1.2.3.4:5")
	}
}

func TestMainWarnsOutsideQueue(t *testing.T) {
	out, err := Main(Options{Milter: "unix:/run/m.sock", Policy: "unix:/var/spool/postfix/relaycap/policy.sock"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(out, "WARNING: outside the queue directory") != 1 ||
		!strings.Contains(out, "smtpd_milters = unix:/run/m.sock\n") ||
		!strings.Contains(out, "smtpd_recipient_restrictions = check_policy_service unix:relaycap/policy.sock\n") {
		t.Errorf("main.cf lines:\n%s", out)
	}
}

// Every customer listener raises both error limits: the live bug was a
// listener that did not.
func TestEveryListenerRaisesErrorLimits(t *testing.T) {
	ss := Services()
	if len(ss) != 5 {
		t.Fatalf("%d listeners, want 5", len(ss))
	}
	for _, s := range ss {
		opts := strings.Join(s.Options, " ")
		for _, o := range append(ErrorLimitOptions, "smtpd_sasl_auth_enable=yes") {
			if !strings.Contains(opts, o) {
				t.Errorf("listener %s lacks -o %s", s.Name, o)
			}
		}
		if !strings.Contains(opts, "smtpd_tls_auth_only=yes") && !strings.Contains(opts, "smtpd_tls_wrappermode=yes") {
			t.Errorf("listener %s allows AUTH without TLS", s.Name)
		}
	}
}

func TestPostconf(t *testing.T) {
	out, err := Postconf(Options{Milter: "unix:/var/spool/postfix/relaycap/milter.sock", Policy: "unix:/var/spool/postfix/relaycap/policy.sock"})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"postconf -e 'smtpd_milters = unix:relaycap/milter.sock'\n",
		"postconf -e 'non_smtpd_milters = '\n",
		"postconf -M 'smtps/inet=smtps inet n - y - - smtpd -o smtpd_tls_wrappermode=yes -o smtpd_sasl_auth_enable=yes -o smtpd_soft_error_limit=1000 -o smtpd_hard_error_limit=1000'\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("postconf commands lack %q:\n%s", want, out)
		}
	}
}
