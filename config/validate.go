package config

import (
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/relaycap/relaycap/quota"
)

// Problems is every problem found in a config, one line each.
type Problems []string

func (p Problems) Error() string { return strings.Join(p, "\n") }

// Validate checks the whole config and returns every problem as Problems, or
// nil. On success it sets c.Location.
func (c *Config) Validate() error {
	var p Problems
	add := func(format string, args ...any) { p = append(p, fmt.Sprintf(format, args...)) }

	if c.StateDir == "" {
		add("state_dir: must not be empty")
	}
	for _, l := range []struct{ key, addr string }{
		{"milter.listen", c.Milter.Listen},
		{"policy.listen", c.Policy.Listen},
		{"admin.listen", c.Admin.Listen},
	} {
		if _, _, err := ParseListen(l.addr); err != nil {
			add("%s: %v", l.key, err)
		}
	}
	oneOf := func(key, val string, allowed ...string) {
		if !slices.Contains(allowed, val) {
			add("%s: %q is not one of %s", key, val, strings.Join(allowed, ", "))
		}
	}
	oneOf("milter.unauthenticated", string(c.Milter.Unauthenticated), string(UnauthenticatedAccept), string(UnauthenticatedReject))
	for _, t := range []struct {
		key string
		d   time.Duration
	}{
		{"milter.read_timeout", c.Milter.ReadTimeout},
		{"milter.write_timeout", c.Milter.WriteTimeout},
		{"policy.read_timeout", c.Policy.ReadTimeout},
	} {
		if t.d <= 0 {
			add("%s: %v is not a positive duration", t.key, t.d)
		}
	}

	var loc *time.Location
	if c.Quota.Timezone == "" {
		add("quota.timezone: must not be empty (use an IANA name such as UTC)")
	} else if l, err := time.LoadLocation(c.Quota.Timezone); err != nil {
		add("quota.timezone: %v", err)
	} else {
		loc = l
	}
	if c.Quota.DefaultDailyLimit < 0 {
		add("quota.default_daily_limit: %d is negative", c.Quota.DefaultDailyLimit)
	}
	oneOf("quota.over_quota", string(c.Quota.OverQuota), string(OverQuotaDefer), string(OverQuotaReject))
	if c.Store.MinFreeMB < 0 || c.Store.MinFreeMB > 1<<30 {
		add("store.min_free_mb: %d is not between 0 and %d (1 PiB)", c.Store.MinFreeMB, 1<<30)
	}
	if c.Quota.HistoryDays < 1 {
		add("quota.history_days: %d is less than 1", c.Quota.HistoryDays)
	}
	for _, name := range slices.Sorted(maps.Keys(c.Quota.Accounts)) {
		a := c.Quota.Accounts[name]
		key := fmt.Sprintf("quota.accounts[%s]", name)
		if name == "" || strings.IndexFunc(name, unicode.IsSpace) >= 0 || strings.IndexFunc(name, unicode.IsControl) >= 0 {
			add("%s: %q is not a login name", key, name)
		} else if name != strings.ToLower(name) {
			add("%s: account names must be lower case", key)
		}
		if a.DailyLimit < 0 {
			add("%s.daily_limit: %d is negative", key, a.DailyLimit)
		}
		statuses := make([]string, 0, 3)
		for _, s := range quota.Statuses() {
			statuses = append(statuses, string(s))
		}
		oneOf(key+".status", string(a.Status), statuses...)
	}

	if strings.TrimSpace(c.IDHeader.KeysFile) == "" {
		add("id_header.keys_file: empty; every authenticated message would be deferred for want of a key")
	}
	if !validHeaderName(c.IDHeader.Name) {
		add("id_header.name: %q is not a header field name", c.IDHeader.Name)
	} else if messageHeader(c.IDHeader.Name) {
		add("id_header.name: %q is a message header; every client copy of it would be deleted", c.IDHeader.Name)
	}
	for _, name := range slices.Sorted(maps.Keys(c.IDHeader.Extra)) {
		switch {
		case !validHeaderName(name):
			add("id_header.extra: %q is not a header field name", name)
		case strings.EqualFold(name, c.IDHeader.Name):
			add("id_header.extra: %q is the identification header itself", name)
		case messageHeader(name):
			add("id_header.extra: %q is a message header; every client copy of it would be deleted", name)
		}
		if strings.ContainsAny(c.IDHeader.Extra[name], "\r\n") {
			add("id_header.extra[%s]: the value must be a single line", name)
		}
	}

	if c.Socket.Mode&^0o777 != 0 {
		add("socket.mode: %#o is not a permission mode 0000..0777 (quote it, like \"0660\")", uint32(c.Socket.Mode))
	}
	oneOf("log.level", c.Log.Level, "debug", "info", "warn", "error")
	oneOf("log.format", c.Log.Format, "text", "json")

	if len(p) > 0 {
		return p
	}
	c.Location = loc
	return nil
}

// messageHeader reports whether name belongs to the message itself (RFC
// 5322 section 3.6, MIME, trace and signature fields). relaycap deletes
// every client copy of the headers it adds, so it must never add these.
func messageHeader(name string) bool {
	switch n := strings.ToLower(name); {
	case strings.HasPrefix(n, "content-"), strings.HasPrefix(n, "resent-"), strings.HasPrefix(n, "arc-"), strings.HasPrefix(n, "list-"):
		return true
	default:
		return slices.Contains([]string{"date", "from", "sender", "reply-to", "to", "cc", "bcc", "message-id",
			"in-reply-to", "references", "subject", "comments", "keywords", "received", "return-path",
			"mime-version", "dkim-signature", "authentication-results", "received-spf", "auto-submitted"}, n)
	}
}

// validHeaderName reports whether s is a header field name: RFC 5322
// section 3.6.8, ftext is printable US-ASCII except ":".
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 33 || s[i] > 126 || s[i] == ':' {
			return false
		}
	}
	return true
}

// maxUnixPath is the longest path a Linux sockaddr_un holds (108 bytes with
// the terminating NUL).
const maxUnixPath = 107

// ParseListen parses a listen address in the milter convention used by
// Postfix's smtpd_milters: "unix:/path" gives ("unix", "/path") and
// "inet:host:port" gives ("tcp", "host:port"), ready for net.Listen. An IPv6
// host goes in brackets: "inet:[::1]:10031". An empty host listens on every
// address; port 0 picks a free port.
func ParseListen(s string) (network, address string, err error) {
	kind, addr, _ := strings.Cut(s, ":")
	switch kind {
	case "unix":
		switch {
		case addr == "":
			return "", "", fmt.Errorf("%q: empty socket path", s)
		case len(addr) > maxUnixPath:
			return "", "", fmt.Errorf("%q: socket path longer than %d bytes", s, maxUnixPath)
		}
		return "unix", addr, nil
	case "inet":
		_, port, err := net.SplitHostPort(addr)
		if err != nil {
			return "", "", fmt.Errorf("%q: %v", s, err)
		}
		if _, err := strconv.ParseUint(port, 10, 16); err != nil {
			return "", "", fmt.Errorf("%q: port %q is not a number 0..65535", s, port)
		}
		return "tcp", addr, nil
	}
	return "", "", fmt.Errorf("%q is not unix:/path or inet:host:port", s)
}
