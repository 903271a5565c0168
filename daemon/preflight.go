package daemon

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"strings"

	"github.com/relaycap/relaycap/config"
	"github.com/relaycap/relaycap/idheader"
	"github.com/relaycap/relaycap/notify"
	"github.com/relaycap/relaycap/sockets"
)

// ConfigError is a start failure the operator must fix in the config or in
// a file it names: restarting cannot help, so `relaycap serve` exits 2
// (which systemd's RestartPreventExitStatus=2 honours).
type ConfigError struct{ Err error }

func (e *ConfigError) Error() string { return e.Err.Error() }
func (e *ConfigError) Unwrap() error { return e.Err }

// Preflight checks what config.Load cannot see: that the keys file, when
// there is one with keys in it, opens (mode, format), that the socket
// group exists, that the admin token file, when listen_tcp needs it,
// holds a token and is not open to others, and that the webhook secret,
// when a webhook is set, reads and is closed to others. A missing or still
// empty keys file is no error here: the daemon starts and defers
// authenticated mail until a key exists.
// `relaycap config check` runs it too.
func Preflight(cfg *config.Config) error {
	_, _, err := preflight(cfg)
	return err
}

// preflight is Preflight returning the keys and the admin token it loaded,
// so that Start reads the files once: keys are nil when the file is
// missing or holds no key yet, the token when there is no listen_tcp.
func preflight(cfg *config.Config) (*idheader.Keyring, []byte, error) {
	var errs []error
	keys, err := idheader.LoadKeyring(cfg.IDHeader.KeysFile)
	if err != nil && !noKeys(err) {
		errs = append(errs, fmt.Errorf("id_header.keys_file: %w", err))
	}
	var token []byte
	if cfg.Admin.ListenTCP != "" {
		if token, err = readToken(cfg.Admin.TokenFile); err != nil {
			errs = append(errs, fmt.Errorf("admin.token_file: %w", err))
		}
	}
	if _, err := redisPassword(cfg); err != nil {
		errs = append(errs, fmt.Errorf("store.redis.password_file: %w", err))
	}
	if g := cfg.Socket.Group; g != "" && anyUnix(cfg.Milter.Listen, cfg.Policy.Listen, cfg.Admin.Listen) {
		if _, err := user.LookupGroup(g); err != nil {
			errs = append(errs, fmt.Errorf("socket.group: %w", err))
		}
	}
	if cfg.Notify.WebhookURL != "" {
		if _, err := notify.ReadSecret(cfg.Notify.SecretFile); err != nil {
			errs = append(errs, fmt.Errorf("notify.secret_file: %w", err))
		}
	}
	if len(errs) > 0 {
		return nil, nil, &ConfigError{errors.Join(errs...)}
	}
	return keys, token, nil
}

// minToken is the shortest bearer token accepted: 16 bytes is 128 bits of
// `openssl rand -hex 16` only if random; shorter is surely not.
const minToken = 16

// readToken reads the admin bearer token: the file's first line. A file
// others may read or write would hand the API to every local user.
func readToken(path string) ([]byte, error) {
	token, err := readSecret(path, minToken)
	return []byte(token), err
}

// readSecret reads the first line of a file that holds a secret, at least
// min characters long. A file others may read or write gives the secret to
// every local user, so it is refused.
func readSecret(path string, min int) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	if fi.Mode().Perm()&0o007 != 0 {
		return "", fmt.Errorf("%s has mode %04o: others may read it; chmod o-rwx it", path, fi.Mode().Perm())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	line, _, _ := strings.Cut(string(data), "\n")
	secret := strings.TrimSpace(line)
	if len(secret) < min {
		return "", fmt.Errorf("%s: the secret on its first line is shorter than %d characters", path, min)
	}
	return secret, nil
}

// anyUnix reports whether one of the listen addresses is a unix socket,
// the only kind socket.group applies to.
func anyUnix(addrs ...string) bool {
	for _, a := range addrs {
		if network, _, err := sockets.ParseListen(a); err == nil && network == "unix" {
			return true
		}
	}
	return false
}
