package config

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/relaycap/relaycap/sockets"
)

// Problems is every problem found in a config, one line each.
type Problems []string

func (p Problems) Error() string { return strings.Join(p, "\n") }

// Validate checks the whole config and returns every problem as Problems,
// or nil. It changes nothing; Load derives what follows from a valid config.
func (c *Config) Validate() error {
	var ck checker
	if c.StateDir == "" {
		ck.add("state_dir: must not be empty")
	}
	c.checkListeners(&ck)
	c.checkMilter(&ck)
	c.checkPolicy(&ck)
	c.checkQuota(&ck)
	// The loader checks the accounts as it reads them, with their lines.
	c.checkIDHeader(&ck)
	c.checkStore(&ck)
	c.checkLog(&ck)
	c.checkSocket(&ck)
	c.checkNotify(&ck)
	c.checkProtection(&ck)
	if len(ck.p) > 0 {
		return ck.p
	}
	return nil
}

// checker collects the problems of one Validate.
type checker struct{ p Problems }

func (ck *checker) add(format string, args ...any) { ck.p = append(ck.p, fmt.Sprintf(format, args...)) }

func (ck *checker) oneOf(key, val string, allowed ...string) {
	if !slices.Contains(allowed, val) {
		ck.add("%s: %q is not one of %s", key, val, strings.Join(allowed, ", "))
	}
}

func (ck *checker) positive(key string, d time.Duration) {
	if d <= 0 {
		ck.add("%s: %v is not a positive duration", key, d)
	}
}

func (c *Config) checkListeners(ck *checker) {
	for _, l := range []struct{ key, addr string }{
		{"milter.listen", c.Milter.Listen},
		{"policy.listen", c.Policy.Listen},
		{"admin.listen", c.Admin.Listen},
	} {
		if _, _, err := sockets.ParseListen(l.addr); err != nil {
			ck.add("%s: %v", l.key, err)
		}
	}
	if c.Admin.ListenTCP != "" {
		if network, _, err := sockets.ParseListen(c.Admin.ListenTCP); err != nil {
			ck.add("admin.listen_tcp: %v", err)
		} else if network != "tcp" {
			ck.add("admin.listen_tcp: %q is not inet:host:port", c.Admin.ListenTCP)
		}
		if c.Admin.TokenFile == "" {
			ck.add("admin.token_file: must be set when admin.listen_tcp is")
		}
	}
	if c.Metrics.Listen != "" {
		if _, _, err := sockets.ParseListen(c.Metrics.Listen); err != nil {
			ck.add("metrics.listen: %v", err)
		}
	}
}

func (c *Config) checkMilter(ck *checker) {
	ck.oneOf("milter.unauthenticated", string(c.Milter.Unauthenticated), string(UnauthenticatedAccept), string(UnauthenticatedReject))
	ck.positive("milter.read_timeout", c.Milter.ReadTimeout)
	ck.positive("milter.write_timeout", c.Milter.WriteTimeout)
}

func (c *Config) checkPolicy(ck *checker) {
	ck.positive("policy.read_timeout", c.Policy.ReadTimeout)
}

func (c *Config) checkQuota(ck *checker) {
	if c.Quota.Timezone == "" {
		ck.add("quota.timezone: must not be empty (use an IANA name such as UTC)")
	} else if _, err := time.LoadLocation(c.Quota.Timezone); err != nil {
		ck.add("quota.timezone: %v", err)
	}
	if c.Quota.DefaultDailyLimit < 0 {
		ck.add("quota.default_daily_limit: %d is negative", c.Quota.DefaultDailyLimit)
	}
	ck.oneOf("quota.over_quota", string(c.Quota.OverQuota), string(OverQuotaDefer), string(OverQuotaReject))
	if c.Quota.HistoryDays < 1 {
		ck.add("quota.history_days: %d is less than 1", c.Quota.HistoryDays)
	}
}

func (c *Config) checkIDHeader(ck *checker) {
	if strings.TrimSpace(c.IDHeader.KeysFile) == "" {
		ck.add("id_header.keys_file: empty; every authenticated message would be deferred for want of a key")
	}
	if !validHeaderName(c.IDHeader.Name) {
		ck.add("id_header.name: %q is not a header field name", c.IDHeader.Name)
	} else if messageHeader(c.IDHeader.Name) {
		ck.add("id_header.name: %q is a message header; every client copy of it would be deleted", c.IDHeader.Name)
	}
	for _, name := range slices.Sorted(maps.Keys(c.IDHeader.Extra)) {
		switch {
		case !validHeaderName(name):
			ck.add("id_header.extra: %q is not a header field name", name)
		case strings.EqualFold(name, c.IDHeader.Name):
			ck.add("id_header.extra: %q is the identification header itself", name)
		case messageHeader(name):
			ck.add("id_header.extra: %q is a message header; every client copy of it would be deleted", name)
		}
		if strings.ContainsAny(c.IDHeader.Extra[name], "\r\n") {
			ck.add("id_header.extra[%s]: the value must be a single line", name)
		}
	}
}

func (c *Config) checkStore(ck *checker) {
	if c.Store.MinFreeMB < 0 || c.Store.MinFreeMB > 1<<30 {
		ck.add("store.min_free_mb: %d is not between 0 and %d (1 PiB)", c.Store.MinFreeMB, 1<<30)
	}
	ck.oneOf("store.backend", string(c.Store.Backend), string(BackendBadger), string(BackendRedis))
	if c.Store.Backend == BackendRedis {
		c.checkRedis(ck)
	}
}

func (c *Config) checkLog(ck *checker) {
	ck.oneOf("log.level", c.Log.Level, "debug", "info", "warn", "error")
	ck.oneOf("log.format", c.Log.Format, "text", "json")
}

func (c *Config) checkSocket(ck *checker) {
	if c.Socket.Mode&^0o777 != 0 {
		ck.add("socket.mode: %#o is not a permission mode 0000..0777 (quote it, like \"0660\")", uint32(c.Socket.Mode))
	}
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
