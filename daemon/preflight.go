package daemon

import (
	"errors"
	"fmt"
	"os/user"
	"strings"

	"github.com/relaycap/relaycap/config"
	"github.com/relaycap/relaycap/idheader"
)

// ConfigError is a start failure the operator must fix in the config or in
// a file it names: restarting cannot help, so `relaycap serve` exits 2
// (which systemd's RestartPreventExitStatus=2 honours).
type ConfigError struct{ Err error }

func (e *ConfigError) Error() string { return e.Err.Error() }
func (e *ConfigError) Unwrap() error { return e.Err }

// Preflight checks what config.Load cannot see: that the keys file, when
// there is one with keys in it, opens (mode, format), and that the socket
// group exists. A missing or still empty keys file is no error here: the
// daemon starts and defers authenticated mail until a key exists.
// `relaycap config check` runs it too.
func Preflight(cfg *config.Config) error {
	_, err := preflight(cfg)
	return err
}

// preflight is Preflight returning the keys it loaded, so that Start reads
// the file once: nil when the file is missing or holds no key yet.
func preflight(cfg *config.Config) (*idheader.Keyring, error) {
	var errs []error
	keys, err := idheader.LoadKeyring(cfg.IDHeader.KeysFile)
	if err != nil && !noKeys(err) {
		errs = append(errs, fmt.Errorf("id_header.keys_file: %w", err))
	}
	unixSocket := strings.HasPrefix(cfg.Milter.Listen, "unix:") || strings.HasPrefix(cfg.Policy.Listen, "unix:")
	if g := cfg.Socket.Group; g != "" && unixSocket {
		if _, err := user.LookupGroup(g); err != nil {
			errs = append(errs, fmt.Errorf("socket.group: %w", err))
		}
	}
	if len(errs) > 0 {
		return nil, &ConfigError{errors.Join(errs...)}
	}
	return keys, nil
}
