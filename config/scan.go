package config

import (
	"bytes"
	"slices"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/relaycap/relaycap/quota"
)

// slowBatch is the most entries scanFast hands yaml.v3 in one piece: big
// enough to amortize the parser, small enough to keep its nodes (about
// 200 bytes a key) and its duplicate check (quadratic) small.
const slowBatch = 256

// scanFast adds the accounts of region, the lines of a block mapping whose
// entries all start at one indent; firstLine is the number of its first
// line. It reads the usual entries itself (name: 500, "name": {daily_limit:
// 5, status: suspended}, or name: and one "key: value" line per field
// below it) and gives every other entry, with the lines that
// continue it, to yaml.v3 a few hundred at a time. It returns false if the
// region is not such a mapping or yaml.v3 reads a piece differently; the
// caller then rolls back and parses the whole file with yaml.v3.
func (s *accountSet) scanFast(region []byte, firstLine int) bool {
	if !printable(region) {
		return false // yaml.v3 refuses the file, and says where
	}
	// Room for an account a line, each line at least "n: 1\n" long.
	lines := bytes.Count(region, []byte{'\n'}) + 1
	s.b.Grow(lines, max(0, len(region)-3*lines))
	s.lines = slices.Grow(s.lines, lines)
	indent := -1
	var cur fastEntry       // the entry being read
	var batch slowPiece     // consecutive entries for yaml.v3
	finish := func() bool { // ends cur
		if !cur.started {
			return true
		}
		if cur.fast && !cur.continued {
			if !s.parseSlow(&batch, region, indent) {
				return false
			}
			s.addFast(cur)
			return true
		}
		if batch.n == 0 {
			batch.start, batch.line = cur.start, cur.line
		}
		batch.end, batch.n = cur.end, batch.n+1
		if batch.n >= slowBatch {
			return s.parseSlow(&batch, region, indent)
		}
		return true
	}
	line := firstLine
	for off := 0; off < len(region); line++ {
		end := bytes.IndexByte(region[off:], '\n')
		next := off + end + 1
		if end < 0 {
			end, next = len(region)-off, len(region)
		}
		text := bytes.TrimSuffix(region[off:off+end], []byte{'\r'})
		start := off
		off = next
		rest := bytes.TrimLeft(text, " ")
		ind := len(text) - len(rest)
		if len(rest) > 0 && rest[0] == '\t' {
			return false // a tab where YAML wants indentation, even on a blank line
		}
		if len(rest) == 0 || rest[0] == '#' {
			if cur.started {
				cur.end = next
			}
			continue
		}
		if indent < 0 {
			indent = ind
		}
		switch {
		case ind < indent:
			return false
		case ind > indent:
			if !cur.started {
				return false
			}
			cur.end = next
			if cur.open && !cur.continued && (cur.blockIndent == 0 || cur.blockIndent == ind) && cur.blockField(rest, line) {
				cur.blockIndent, cur.fast = ind, true
				continue
			}
			cur.continued = true
			continue
		}
		if !finish() {
			return false
		}
		if c := rest[0]; !plainStart(c) && c != '"' && c != '\'' && c < utf8.RuneSelf {
			// A flow collection, a complex key, an anchor, a tag: read
			// alone it may mean what it cannot mean in its mapping.
			return false
		}
		cur = fastEntry{started: true, start: start, end: next, line: line}
		cur.name, cur.flow, cur.fast, cur.open = fastLine(rest)
	}
	return finish() && s.parseSlow(&batch, region, indent)
}

type fastEntry struct {
	started, fast, continued bool
	start, end, line         int    // bytes of region; first line number
	name                     []byte // in region
	flow                     flowValue
	// open: the line ends after "name:", the value is on the lines below;
	// blockIndent is theirs, seen the keys they gave.
	open        bool
	blockIndent int
	seen        [3]bool
	statusLine  int // where a block's status is, for its problem
}

// blockField reads one line of the long form in block style,
// "daily_limit: N", "status: word" or "dry_run: true|false", each key once,
// then an optional comment.
func (e *fastEntry) blockField(p []byte, line int) bool {
	i := 0
	for i < len(p) && (p[i] >= 'a' && p[i] <= 'z' || p[i] == '_') {
		i++
	}
	key := p[:i]
	if i+1 >= len(p) || p[i] != ':' || p[i+1] != ' ' {
		return false
	}
	i = skipSpaces(p, i+1)
	w := i
	for i < len(p) && p[i] >= 'a' && p[i] <= 'z' {
		i++
	}
	word := p[w:i]
	switch {
	case string(key) == "daily_limit" && !e.seen[0]:
		var ok bool
		if e.flow.limit, i, ok = fastInt(p, w); !ok {
			return false
		}
		e.seen[0] = true
	case string(key) == "status" && !e.seen[1] && len(word) > 0 && string(word) != "null":
		e.flow.status, e.seen[1], e.statusLine = word, true, line
	case string(key) == "dry_run" && !e.seen[2] && (string(word) == "true" || string(word) == "false"):
		e.flow.dryRun, e.seen[2] = string(word) == "true", true
	default:
		return false
	}
	j := skipSpaces(p, i)
	return j == len(p) || j > i && p[j] == '#'
}

type slowPiece struct{ start, end, line, n int }

func (s *accountSet) addFast(e fastEntry) {
	st := quota.StatusActive
	switch string(e.flow.status) {
	case "", "active":
	case "suspended":
		st = quota.StatusSuspended
	case "terminated":
		st = quota.StatusTerminated
	default:
		line := e.line
		if e.statusLine > 0 {
			line = e.statusLine
		}
		s.problem(line, "account %q: status %q is not one of active, suspended, terminated", e.name, e.flow.status)
		return
	}
	s.add(e.line, e.name, e.flow.limit, st, e.flow.dryRun)
}

// parseSlow hands the batch to yaml.v3 and empties it.
func (s *accountSet) parseSlow(b *slowPiece, region []byte, indent int) bool {
	if b.n == 0 {
		return true
	}
	piece := region[b.start:b.end]
	if bytes.Contains(piece, []byte("\ufeff")) {
		return false // a byte order mark starting a piece would be dropped, not read
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(dedent(piece, indent), &doc); err != nil {
		return false
	}
	if len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode || len(doc.Content[0].Content) != 2*b.n {
		return false
	}
	s.walk(doc.Content[0], b.line-1)
	*b = slowPiece{}
	return true
}

// dedent removes up to n leading spaces from each line.
func dedent(p []byte, n int) []byte {
	if n == 0 {
		return p
	}
	out := make([]byte, 0, len(p))
	for len(p) > 0 {
		line := p
		if i := bytes.IndexByte(p, '\n'); i >= 0 {
			line, p = p[:i+1], p[i+1:]
		} else {
			p = nil
		}
		k := 0
		for k < n && k < len(line) && line[k] == ' ' {
			k++
		}
		out = append(out, line[k:]...)
	}
	return out
}

// fastLine reads one entry the way yaml.v3 would, if it is written in the
// narrow form it knows: a plain name of [A-Za-z0-9_.@+-] or a quoted
// printable ASCII one without escapes, ": ", and either a decimal limit or
// {daily_limit: N, status: word, dry_run: true|false} in any order, then an
// optional comment.
// Anything else (an empty value, a multi-line value, a null name, an
// anchor, a tag, another number form) is not fast.
func fastLine(p []byte) (name []byte, v flowValue, fast, open bool) {
	var i int
	switch c := p[0]; {
	case c == '"' || c == '\'':
		j := 1
		for j < len(p) && p[j] != c {
			if p[j] < 0x20 || p[j] > 0x7e || p[j] == '\\' {
				return
			}
			j++
		}
		if j == len(p) {
			return
		}
		name, i = p[1:j], j+1
	case plainStart(c):
		for i < len(p) && plainChar(p[i]) {
			i++
		}
		name = p[:i]
		if n := string(name); n == "null" || n == "Null" || n == "NULL" {
			return
		}
	default:
		return
	}
	if i == len(p)-1 && p[i] == ':' {
		return name, v, false, true // the value, if any, is on the next lines
	}
	if i+1 >= len(p) || p[i] != ':' || p[i+1] != ' ' {
		return
	}
	i = skipSpaces(p, i+1)
	if i == len(p) || p[i] == '#' {
		return name, v, false, true
	}
	var ok bool
	if p[i] == '{' {
		v, i, ok = fastFlow(p, i+1)
	} else {
		v.limit, i, ok = fastInt(p, i)
	}
	if !ok {
		return nil, flowValue{}, false, false
	}
	if j := skipSpaces(p, i); j < len(p) && (j == i || p[j] != '#') {
		return nil, flowValue{}, false, false
	}
	return name, v, true, false
}

// flowValue is an account's value: its limit, status as written ("" if
// not) and dry_run.
type flowValue struct {
	limit  int64
	status []byte
	dryRun bool
}

// fastFlow reads the rest of {daily_limit: N, status: word, dry_run: bool}
// (each key at most once, in any order) from p[i:].
func fastFlow(p []byte, i int) (v flowValue, end int, ok bool) {
	var seen [3]bool
	for {
		i = skipSpaces(p, i)
		k := i
		for i < len(p) && (p[i] >= 'a' && p[i] <= 'z' || p[i] == '_') {
			i++
		}
		key := p[k:i]
		if i+1 >= len(p) || p[i] != ':' || p[i+1] != ' ' {
			return flowValue{}, 0, false
		}
		i = skipSpaces(p, i+1)
		w := i
		for i < len(p) && p[i] >= 'a' && p[i] <= 'z' {
			i++
		}
		word := p[w:i]
		wordEnds := len(word) > 0 && (i == len(p) || p[i] == ' ' || p[i] == ',' || p[i] == '}')
		switch {
		case string(key) == "daily_limit" && !seen[0]:
			if v.limit, i, ok = fastInt(p, w); !ok {
				return flowValue{}, 0, false
			}
			seen[0] = true
		case string(key) == "status" && !seen[1] && wordEnds && string(word) != "null":
			v.status, seen[1] = word, true
		case string(key) == "dry_run" && !seen[2] && wordEnds && (string(word) == "true" || string(word) == "false"):
			v.dryRun, seen[2] = string(word) == "true", true
		default:
			return flowValue{}, 0, false
		}
		i = skipSpaces(p, i)
		if i == len(p) {
			return flowValue{}, 0, false
		}
		switch p[i] {
		case '}':
			return v, i + 1, true
		case ',':
			i++
		default:
			return flowValue{}, 0, false
		}
	}
}

// fastInt reads -?(0|[1-9][0-9]*) of up to 18 digits, which a space, a
// flow indicator or the line's end must follow.
func fastInt(p []byte, i int) (n int64, end int, ok bool) {
	start := i
	if i < len(p) && p[i] == '-' {
		i++
	}
	d := i
	for i < len(p) && p[i] >= '0' && p[i] <= '9' {
		i++
	}
	if i == d || i-d > 18 || p[d] == '0' && i-d > 1 {
		return 0, 0, false
	}
	if i < len(p) && p[i] != ' ' && p[i] != ',' && p[i] != '}' {
		return 0, 0, false
	}
	for _, c := range p[d:i] {
		n = n*10 + int64(c-'0') // 18 digits cannot overflow
	}
	if p[start] == '-' {
		n = -n
	}
	return n, i, true
}

// printable reports whether p holds only what YAML allows in a stream
// (YAML 1.2 section 5.1, c-printable), as valid UTF-8, no byte order mark
// (yaml.v3 refuses anything else, even in a comment), and no CR but in a
// CRLF.
func printable(p []byte) bool {
	for i := 0; i < len(p); {
		c := p[i]
		if c < utf8.RuneSelf {
			if c < 0x20 && c != '\t' && c != '\n' && c != '\r' || c == 0x7f {
				return false
			}
			if c == '\r' && (i+1 == len(p) || p[i+1] != '\n') {
				return false // a line break of its own to YAML, not to the scanner
			}
			i++
			continue
		}
		r, n := utf8.DecodeRune(p[i:])
		if r == utf8.RuneError || r == 0xfeff || !(r == 0x85 || r >= 0xa0 && r <= 0xd7ff || r >= 0xe000 && r <= 0xfffd || r >= 0x10000) {
			return false
		}
		i += n
	}
	return true
}

func skipSpaces(p []byte, i int) int {
	for i < len(p) && p[i] == ' ' {
		i++
	}
	return i
}

func plainStart(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_'
}

func plainChar(c byte) bool {
	return plainStart(c) || c == '.' || c == '@' || c == '+' || c == '-'
}
