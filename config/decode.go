package config

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"go.yaml.in/yaml/v3"
)

// decimalMode reports socket.mode written as a plain number: YAML reads
// 440 as decimal (0670 as a mode), which is never what was meant; a
// leading 0 (0440) or quotes ("0440") make it octal.
func decimalMode(doc *yaml.Node) Problems {
	if len(doc.Content) == 0 {
		return nil
	}
	mode := lookupNode(lookupNode(doc.Content[0], "socket"), "mode")
	if mode == nil || mode.Tag != "!!int" || strings.HasPrefix(mode.Value, "0") {
		return nil
	}
	return Problems{fmt.Sprintf("socket.mode: %s is a decimal number; write the octal mode with a leading 0 or quoted, like \"0%s\"", mode.Value, mode.Value)}
}

// lookupNode returns the value of key in a YAML mapping node, or nil.
func lookupNode(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if strings.EqualFold(m.Content[i].Value, key) {
			return m.Content[i+1]
		}
	}
	return nil
}

// caseClashes reports keys of one mapping that differ only in case: viper
// would silently keep one of them.
func caseClashes(m map[string]any, at string) Problems {
	var p Problems
	seen := make(map[string]string, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		lk := strings.ToLower(k)
		if prev, dup := seen[lk]; dup {
			p = append(p, fmt.Sprintf("%s: keys %q and %q differ only in case", strings.TrimPrefix(at, "."), prev, k))
		}
		seen[lk] = k
		if sub, ok := m[k].(map[string]any); ok {
			p = append(p, caseClashes(sub, at+"."+lk)...)
		}
	}
	return p
}

// extraHeaderNames maps the lowercased id_header.extra names to their case
// in the file.
func extraHeaderNames(raw map[string]any) map[string]string {
	ih, _ := raw["id_header"].(map[string]any)
	extra, _ := ih["extra"].(map[string]any)
	names := make(map[string]string, len(extra))
	for k := range extra {
		names[strings.ToLower(k)] = k
	}
	return names
}

// decode is strict: unknown keys and values of the wrong type are errors.
func decode(input, out any) error {
	d, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		ErrorUnused: true,
		Result:      out,
		DecodeHook: mapstructure.ComposeDecodeHookFunc(
			durationHook, modeHook, intListHook, stringListHook, stringScalarHook,
		),
	})
	if err != nil {
		return err
	}
	return d.Decode(input)
}

// decodeProblems flattens mapstructure's joined errors into one line each.
func decodeProblems(err error, prefix string) Problems {
	var p Problems
	var walk func(error)
	walk = func(err error) {
		var de *mapstructure.DecodeError
		switch e := err.(type) {
		case interface{ Unwrap() []error }:
			for _, e := range e.Unwrap() {
				walk(e)
			}
		case *mapstructure.DecodeError:
			de = e
		default:
			if inner := errors.Unwrap(err); inner != nil {
				walk(inner)
			} else {
				p = append(p, prefix+err.Error())
			}
		}
		if de == nil {
			return
		}
		msg := de.Unwrap().Error()
		if keys, ok := strings.CutPrefix(msg, "has invalid keys: "); ok {
			for _, k := range strings.Split(keys, ", ") {
				p = append(p, prefix+"unknown key "+strings.TrimPrefix(de.Name()+"."+k, "."))
			}
			return
		}
		p = append(p, prefix+de.Name()+": "+msg)
	}
	walk(err)
	slices.Sort(p) // mapstructure walks maps in random order
	return p
}

var (
	durationType = reflect.TypeFor[time.Duration]()
	modeType     = reflect.TypeFor[fs.FileMode]()
)

// durationHook wants a unit: a bare 300 would otherwise be 300ns.
func durationHook(_, to reflect.Type, data any) (any, error) {
	if to != durationType {
		return data, nil
	}
	switch v := data.(type) {
	case time.Duration:
		return v, nil
	case string:
		return time.ParseDuration(v)
	}
	return nil, fmt.Errorf("%v is not a duration with a unit, like \"30s\" or \"5m\"", data)
}

// modeHook reads "0660" as octal. An unquoted 0660 is already octal to the
// YAML parser and arrives as 432; Validate catches a decimal 660.
func modeHook(_, to reflect.Type, data any) (any, error) {
	if to != modeType {
		return data, nil
	}
	if s, ok := data.(string); ok {
		n, err := strconv.ParseUint(s, 8, 32)
		if err != nil {
			return nil, fmt.Errorf("%q is not an octal mode like \"0660\"", s)
		}
		return fs.FileMode(n), nil
	}
	if v := reflect.ValueOf(data); v.CanInt() && v.Int() >= 0 && v.Int() <= 0o7777 {
		return fs.FileMode(v.Int()), nil
	}
	return nil, fmt.Errorf("%v is not an octal mode like \"0660\"", data)
}

// stringScalarHook parses numbers and booleans that arrive as strings (every
// environment variable does). Base 10 only: "0100" is a hundred.
func stringScalarHook(_, to reflect.Type, data any) (any, error) {
	s, ok := data.(string)
	if !ok {
		return data, nil
	}
	switch to.Kind() {
	case reflect.Int, reflect.Int64:
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%q is not a whole number", s)
		}
		return n, nil
	case reflect.Bool:
		b, err := strconv.ParseBool(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("%q is not true or false", s)
		}
		return b, nil
	}
	return data, nil
}
