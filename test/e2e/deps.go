//go:build e2e

package e2e

import (
	"errors"
	"fmt"
	"os/exec"
	"strings"
)

// InstallHint is appended to every error about a missing peer program.
const InstallHint = "install with: make e2e-deps"

// requiredTools are the programs the sandbox runs. smtp-sink and
// smtp-source come with the postfix package; we check smtp-sink so a
// broken Postfix install is reported here rather than half way through.
var requiredTools = []string{"postfix", "postconf", "postqueue", "smtp-sink", "dovecot", "swaks", "openssl"}

// sbinDirs are searched as well as $PATH: Debian puts postfix and dovecot
// in /usr/sbin, which is not on a non-root user's PATH.
var sbinDirs = []string{"/usr/sbin", "/sbin", "/usr/local/sbin"}

// LookTool finds a peer program on $PATH or in the sbin folders.
func LookTool(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, d := range sbinDirs {
		if p, err := exec.LookPath(d + "/" + name); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found", name)
}

// CheckDeps reports every missing peer program at once, and whether swaks
// can speak TLS (it needs two Perl packages that are only Recommends).
func CheckDeps() error {
	var missing []string
	for _, t := range requiredTools {
		if _, err := LookTool(t); err != nil {
			missing = append(missing, t)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("e2e: missing %s; %s", strings.Join(missing, ", "), InstallHint)
	}
	out, _ := exec.Command("swaks", "--support").CombinedOutput()
	if !strings.Contains(string(out), "TLS supported") {
		return errors.New("e2e: swaks cannot do TLS (libnet-ssleay-perl, libio-socket-ssl-perl missing?): " +
			strings.TrimSpace(string(out)) + "; " + InstallHint)
	}
	return nil
}
