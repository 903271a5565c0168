package config

import (
	"net"
	"reflect"
	"strconv"
	"strings"
)

func (c *Config) checkRedis(ck *checker) {
	r := c.Store.Redis
	if len(r.Addrs) == 0 {
		ck.add("store.redis.addrs: must name at least one server")
	}
	for _, a := range r.Addrs {
		if path, ok := strings.CutPrefix(a, "unix:"); ok {
			if !strings.HasPrefix(path, "/") {
				ck.add("store.redis.addrs: %q is not unix:/absolute/path", a)
			}
			if len(r.Addrs) > 1 {
				ck.add("store.redis.addrs: %q: a Redis Cluster is reached over TCP, not a unix socket", a)
			}
			continue
		}
		host, port, err := net.SplitHostPort(a)
		if n, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || n < 1 || n > 65535 {
			ck.add("store.redis.addrs: %q is not host:port or unix:/path", a)
		}
	}
	if strings.ContainsAny(r.KeyPrefix, "{} \t\r\n") {
		ck.add("store.redis.key_prefix: %q must not contain braces (they are the accounts' cluster hash tags) or spaces", r.KeyPrefix)
	}
	ck.positive("store.redis.timeout", r.Timeout)
	ck.positive("store.redis.hold_ttl", r.HoldTTL)
	if r.HoldTTL < c.Milter.ReadTimeout {
		ck.add("store.redis.hold_ttl: %v is shorter than milter.read_timeout %v: no milter callback arrives during DATA, so a slow upload would lose its reservations", r.HoldTTL, c.Milter.ReadTimeout)
	}
	if r.WaitReplicas < 0 || r.WaitReplicas > 100 {
		ck.add("store.redis.wait_replicas: %d is not between 0 and 100", r.WaitReplicas)
	}
}

var stringsType = reflect.TypeFor[[]string]()

// stringListHook reads "a:6379,b:6379" (an environment variable) as a list.
func stringListHook(_, to reflect.Type, data any) (any, error) {
	s, ok := data.(string)
	if !ok || to != stringsType {
		return data, nil
	}
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' }), nil
}
