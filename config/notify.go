package config

import (
	"fmt"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// NotifyConfig is the customer-event webhook. Empty WebhookURL: no events
// are written or sent.
type NotifyConfig struct {
	WebhookURL string `mapstructure:"webhook_url"`
	// SecretFile holds the HMAC key the requests are signed with; it must
	// not be readable by others.
	SecretFile string `mapstructure:"secret_file"`
	// Thresholds are percents of the daily limit; crossing one sends an
	// event, once per account and day.
	Thresholds []int `mapstructure:"thresholds"`
}

func (c *Config) checkNotify(ck *checker) {
	n := c.Notify
	for i, t := range n.Thresholds {
		if t < 1 || t > 100 {
			ck.add("notify.thresholds: %d is not a percent 1..100", t)
		} else if slices.Contains(n.Thresholds[:i], t) {
			ck.add("notify.thresholds: %d is given twice", t)
		}
	}
	if n.WebhookURL == "" {
		return
	}
	u, err := url.Parse(n.WebhookURL)
	switch {
	case err != nil:
		ck.add("notify.webhook_url: %v", err)
	case u.Scheme != "http" && u.Scheme != "https":
		ck.add("notify.webhook_url: %q is not an http:// or https:// URL", n.WebhookURL)
	case u.Host == "":
		ck.add("notify.webhook_url: %q has no host", n.WebhookURL)
	}
	if strings.TrimSpace(n.SecretFile) == "" {
		ck.add("notify.secret_file: empty; webhook requests must be signed")
	}
}

var intsType = reflect.TypeFor[[]int]()

// intListHook reads "80,90,100" (an environment variable) as a list.
func intListHook(_, to reflect.Type, data any) (any, error) {
	s, ok := data.(string)
	if !ok || to != intsType {
		return data, nil
	}
	var out []int
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' }) {
		n, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("%q is not a list of whole numbers like \"80,100\"", s)
		}
		out = append(out, n)
	}
	return out, nil
}
