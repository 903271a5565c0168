package config

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/relaycap/relaycap/quota"
)

// maxAccountProblems bounds the lines a broken file of a million accounts
// prints; the rest are counted.
const maxAccountProblems = 1000

// accountSet collects the file-managed accounts of one load, from
// quota.accounts and then the accounts file, with the line each came from,
// in time linear in their number. yaml.v3 checks a mapping's keys for
// duplicates in quadratic time when it decodes one, so accounts are never
// decoded as a whole mapping: scanFast reads the usual one-line entries
// itself, and walk reads a parsed node pair by pair.
type accountSet struct {
	b     quota.FileAccountsBuilder
	lines []int32        // by index: the line of the entry
	where []string       // the source of each index range: where[i] starts at starts[i]
	start []int          //
	orig  map[int]string // the spelling of names that had upper case
	probs Problems
	more  int // problems past maxAccountProblems
}

type setMark struct{ n, probs, more, sources int }

func (s *accountSet) mark() setMark {
	return setMark{s.b.Len(), len(s.probs), s.more, len(s.where)}
}

// rollback forgets what was added since m.
func (s *accountSet) rollback(m setMark) {
	s.b.Truncate(m.n)
	s.lines = s.lines[:m.n]
	for i := range s.orig {
		if i >= m.n {
			delete(s.orig, i)
		}
	}
	s.probs, s.more = s.probs[:m.probs], m.more
	s.where, s.start = s.where[:m.sources], s.start[:m.sources]
}

// source starts the entries of a new source, named where in problems.
func (s *accountSet) source(where string) {
	s.where = append(s.where, where)
	s.start = append(s.start, s.b.Len())
}

func (s *accountSet) sourceOf(i int) string {
	w := ""
	for k, st := range s.start {
		if st <= i {
			w = s.where[k]
		}
	}
	return w
}

// problem reports a problem at line of the current source.
func (s *accountSet) problem(line int, format string, args ...any) {
	s.note("%s line %d: %s", s.where[len(s.where)-1], line, fmt.Sprintf(format, args...))
}

func (s *accountSet) note(format string, args ...any) {
	if len(s.probs) >= maxAccountProblems {
		s.more++
		return
	}
	s.probs = append(s.probs, fmt.Sprintf(format, args...))
}

// add records one account as written in the file and reports whether it
// was valid.
func (s *accountSet) add(line int, name []byte, limit int64, status quota.Status, dryRun bool) bool {
	if !loginName(name) {
		s.problem(line, "%q is not a login name", name)
		return false
	}
	if limit < 0 {
		s.problem(line, "account %q: daily_limit %d is negative", name, limit)
		return false
	}
	if hasUpper(name) {
		if s.orig == nil {
			s.orig = make(map[int]string)
		}
		s.orig[s.b.Len()] = string(name)
		name = bytes.ToLower(name)
	}
	s.lines = append(s.lines, int32(line))
	s.b.Add(name, limit, status, dryRun)
	return true
}

// loginName reports whether name can be a SASL login: not empty, no space
// or control character.
func loginName(name []byte) bool {
	for i, c := range name {
		if c >= utf8.RuneSelf {
			rest := name[i:]
			return bytes.IndexFunc(rest, unicode.IsSpace) < 0 && bytes.IndexFunc(rest, unicode.IsControl) < 0
		}
		if c <= ' ' || c == 0x7f {
			return false
		}
	}
	return len(name) > 0
}

// hasUpper reports whether name has a letter that lower case changes.
func hasUpper(name []byte) bool {
	for _, c := range name {
		if c >= 'A' && c <= 'Z' || c >= 0x80 {
			return true
		}
	}
	return false
}

func (s *accountSet) spelling(i int, name string) string {
	if o, ok := s.orig[i]; ok {
		return o
	}
	return name
}

// build sorts the accounts into their table and reports names given twice.
func (s *accountSet) build() (*quota.FileAccounts, Problems) {
	tab, dups := s.b.Build()
	for _, d := range dups {
		w1, w2 := s.sourceOf(d.First), s.sourceOf(d.Again)
		l1, l2 := s.lines[d.First], s.lines[d.Again]
		n1, n2 := s.spelling(d.First, d.Name), s.spelling(d.Again, d.Name)
		switch {
		case w1 != w2:
			s.note("account %q is defined in both %s (line %d) and %s (line %d)", d.Name, w1, l1, w2, l2)
		case n1 != n2:
			s.note("%s line %d: %q and %q (line %d) differ only in case", w2, l2, n2, n1, l1)
		default:
			s.note("%s line %d: account %q is already defined at line %d", w2, l2, n2, l1)
		}
	}
	if s.more > 0 {
		s.probs = append(s.probs, fmt.Sprintf("… and %d more problems with accounts", s.more))
	}
	return tab, s.probs
}

// walk adds the accounts of a parsed mapping node; offset is added to the
// node's line numbers (a node parsed from a piece of a file).
func (s *accountSet) walk(m *yaml.Node, offset int) {
	if m.Kind == yaml.AliasNode {
		m = m.Alias
	}
	if m.Kind == yaml.ScalarNode && m.Tag == "!!null" {
		return
	}
	if m.Kind != yaml.MappingNode {
		s.problem(m.Line+offset, "expected a mapping of login: limit")
		return
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		line := k.Line + offset
		if k.Kind != yaml.ScalarNode || k.Tag == "!!null" {
			s.problem(line, "an account name must be a plain string")
			continue
		}
		s.entry(line, k.Value, v, offset)
	}
}

// entry adds one account from its value node: a limit, or a mapping of
// daily_limit, status, hourly_limit and dry_run (keys case-insensitive, like every other
// key).
func (s *accountSet) entry(line int, name string, v *yaml.Node, offset int) {
	if v.Kind == yaml.AliasNode {
		v = v.Alias
	}
	switch v.Kind {
	case yaml.ScalarNode:
		if v.Tag == "!!null" {
			s.problem(line, "account %q has no daily limit", strings.ToLower(name))
			return
		}
		limit, err := nodeInt(v)
		if err != nil {
			s.problem(line, "account %q: daily_limit %v", name, err)
			return
		}
		s.add(line, []byte(name), limit, quota.StatusActive, false)
	case yaml.MappingNode:
		var limit, hourly int64
		var dryRun bool
		status := quota.StatusActive
		ok := true
		seen := map[string]bool{}
		for i := 0; i+1 < len(v.Content); i += 2 {
			k, fv := v.Content[i], v.Content[i+1]
			if fv.Kind == yaml.AliasNode {
				fv = fv.Alias
			}
			key := strings.ToLower(k.Value)
			if seen[key] {
				s.problem(k.Line+offset, "account %q: %s is given twice", name, key)
				ok = false
				continue
			}
			seen[key] = true
			switch key {
			case "daily_limit":
				n, err := nodeInt(fv)
				if err != nil {
					s.problem(k.Line+offset, "account %q: daily_limit %v", name, err)
					ok = false
				}
				limit = n
			case "hourly_limit":
				n, err := nodeInt(fv)
				if err == nil && n < 0 {
					err = fmt.Errorf("%d is negative", n)
				}
				if err != nil {
					s.problem(k.Line+offset, "account %q: hourly_limit %v", name, err)
					ok = false
				}
				hourly = n
			case "dry_run":
				b, err := nodeBool(fv)
				if err != nil {
					s.problem(k.Line+offset, "account %q: dry_run %v", name, err)
					ok = false
				}
				dryRun = b
			case "status":
				st, err := nodeStatus(fv)
				if err != nil {
					s.problem(k.Line+offset, "account %q: %v", name, err)
					ok = false
				}
				status = st
			default:
				s.problem(k.Line+offset, "account %q: unknown key %q", name, k.Value)
				ok = false
			}
		}
		if ok && s.add(line, []byte(name), limit, status, dryRun) {
			s.b.SetHourly(hourly)
		}
	default:
		s.problem(line, "account %q: expected a daily limit or {daily_limit: N, status: S}", name)
	}
}

// nodeInt reads a whole number as YAML does (0x1f, 0o17, 1_000), or from
// a string in base 10, as an environment variable would give it.
func nodeInt(v *yaml.Node) (int64, error) {
	if v.Kind == yaml.ScalarNode {
		switch v.Tag {
		case "!!int":
			var n int64
			if err := v.Decode(&n); err == nil {
				return n, nil
			}
		case "!!str":
			if n, err := strconv.ParseInt(strings.TrimSpace(v.Value), 10, 64); err == nil {
				return n, nil
			}
			return 0, fmt.Errorf("%q is not a whole number", v.Value)
		}
	}
	return 0, fmt.Errorf("%s is not a whole number", nodeText(v))
}

// nodeBool reads true or false, or a string that says so.
func nodeBool(v *yaml.Node) (bool, error) {
	if v.Kind == yaml.ScalarNode {
		switch v.Tag {
		case "!!bool":
			var b bool
			if err := v.Decode(&b); err == nil {
				return b, nil
			}
		case "!!str":
			if b, err := strconv.ParseBool(strings.TrimSpace(v.Value)); err == nil {
				return b, nil
			}
		}
	}
	return false, fmt.Errorf("%s is not true or false", nodeText(v))
}

func nodeStatus(v *yaml.Node) (quota.Status, error) {
	if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
		return quota.StatusActive, nil
	}
	if v.Kind == yaml.ScalarNode && v.Tag == "!!str" {
		if st, err := quota.ParseStatus(v.Value); err == nil {
			return st, nil
		}
	}
	return "", fmt.Errorf("status %s is not one of active, suspended, terminated", nodeText(v))
}

func nodeText(v *yaml.Node) string {
	if v.Kind == yaml.ScalarNode {
		return strconv.Quote(v.Value)
	}
	return "a " + map[yaml.Kind]string{yaml.MappingNode: "mapping", yaml.SequenceNode: "list"}[v.Kind]
}
