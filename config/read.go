package config

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"
)

// useScan is off only in tests that compare scanFast with yaml.v3.
var useScan = true

// readRegular reads a whole file. Only regular files: a config naming
// /dev/zero or a FIFO must fail, not hang.
func readRegular(path string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", path)
	}
	return os.ReadFile(path)
}

// readConfig reads the config file at path: the settings for viper, the
// parsed node (it keeps how values were written, for decimalMode), and
// quota.accounts into set. A million inline accounts must neither go
// through viper nor be parsed into yaml.v3 nodes (half a gigabyte), so the
// usual block of them is cut out of the text first and read by scanFast.
func readConfig(path string, set *accountSet) (map[string]any, *yaml.Node, error) {
	data, err := readRegular(path)
	if err != nil {
		return nil, nil, err
	}
	set.source("quota.accounts")
	mark := set.mark()
	if rest, blk, ok := cutInlineAccounts(data); ok && useScan {
		raw, doc, accounts, err := parseConfig(path, rest)
		if err == nil && len(accounts) == 1 && accounts[0].Tag == "!!null" && accounts[0].Line == blk.keyLine &&
			set.scanFast(blk.lines, blk.firstLine) {
			return raw, doc, nil
		}
		set.rollback(mark)
	}
	raw, doc, accounts, err := parseConfig(path, data)
	if err != nil {
		return nil, nil, err
	}
	for i, a := range accounts {
		if i > 0 {
			set.problem(a.Line, "quota.accounts is given more than once")
		}
		set.walk(a, 0)
	}
	return raw, doc, nil
}

// parseConfig parses a config file and decodes it into a map, except for
// quota.accounts, which it takes out of the map and returns as nodes (one,
// unless the file repeats the key in another case).
func parseConfig(path string, data []byte) (map[string]any, *yaml.Node, []*yaml.Node, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	accounts := detachAccounts(&doc)
	var m map[string]any
	if err := doc.Decode(&m); err != nil {
		return nil, nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	if m == nil {
		// Most likely caught half-written by a reload: taking it as "no
		// settings" would drop every account. {} says so on purpose.
		return nil, nil, nil, fmt.Errorf("%s: the file holds no settings (write {} if that is meant)", path)
	}
	return m, &doc, accounts, nil
}

// detachAccounts removes quota.accounts from doc and returns its values.
func detachAccounts(doc *yaml.Node) []*yaml.Node {
	if len(doc.Content) == 0 {
		return nil
	}
	q := lookupNode(doc.Content[0], "quota")
	if q == nil || q.Kind != yaml.MappingNode {
		return nil
	}
	var found []*yaml.Node
	kept := q.Content[:0]
	for i := 0; i+1 < len(q.Content); i += 2 {
		if strings.EqualFold(q.Content[i].Value, "accounts") {
			found = append(found, q.Content[i+1])
			continue
		}
		kept = append(kept, q.Content[i], q.Content[i+1])
	}
	q.Content = kept
	return found
}

// inlineBlock is the text of quota.accounts' entries in a config file.
type inlineBlock struct {
	lines     []byte
	firstLine int // the number of lines' first line
	keyLine   int // the line of "accounts:"
}

// cutInlineAccounts finds quota.accounts written as a block,
//
//	quota:
//	  accounts:
//	    alice: 500
//
// and returns the file with that block's lines emptied (line numbers stay)
// and the block. readConfig checks yaml.v3 agrees: in what is left,
// quota.accounts must be empty and on the line found here.
func cutInlineAccounts(data []byte) ([]byte, inlineBlock, bool) {
	const (
		top = iota
		inQuota
		inAccounts
	)
	state, quotaIndent := top, -1
	var blk inlineBlock
	blockStart, blockEnd := -1, -1
	seenQuota, seenAccounts := false, false
	line := 0
	for off := 0; off < len(data); {
		line++
		start := off
		end := bytes.IndexByte(data[off:], '\n')
		if end < 0 {
			end = len(data) - off
			off = len(data)
		} else {
			off += end + 1
		}
		text := bytes.TrimRight(data[start:start+end], " \r")
		rest := bytes.TrimLeft(text, " ")
		if len(rest) == 0 || rest[0] == '#' {
			continue
		}
		ind := len(text) - len(rest)
		if state == inAccounts {
			if ind > quotaIndent {
				continue
			}
			blockEnd, state = start, inQuota
		}
		switch {
		case ind == 0:
			if bytes.HasPrefix(rest, []byte("---")) || bytes.HasPrefix(rest, []byte("...")) || rest[0] == '%' {
				return nil, blk, false // more than one document, or directives
			}
			state = top
			if bareKey(rest, "quota") {
				if seenQuota {
					return nil, blk, false
				}
				seenQuota, state = true, inQuota
			}
		case state == inQuota:
			if quotaIndent < 0 {
				quotaIndent = ind
			}
			if ind == quotaIndent && bareKey(rest, "accounts") {
				if seenAccounts {
					return nil, blk, false
				}
				seenAccounts, state = true, inAccounts
				blk.keyLine, blk.firstLine, blockStart = line, line+1, off
			}
		}
	}
	if blockStart < 0 {
		return nil, blk, false
	}
	if blockEnd < 0 {
		blockEnd = len(data)
	}
	blk.lines = data[blockStart:blockEnd]
	n := bytes.Count(blk.lines, []byte{'\n'})
	rest := make([]byte, 0, blockStart+n+len(data)-blockEnd)
	rest = append(rest, data[:blockStart]...)
	rest = append(rest, bytes.Repeat([]byte{'\n'}, n)...)
	rest = append(rest, data[blockEnd:]...)
	return rest, blk, true
}

// bareKey reports whether line is "key:" with at most a comment after it.
func bareKey(line []byte, key string) bool {
	rest, ok := bytes.CutPrefix(line, []byte(key+":"))
	if !ok || len(rest) == 0 {
		return ok
	}
	t := bytes.TrimLeft(rest, " ")
	return len(t) < len(rest) && t[0] == '#'
}

// readAccountsFile reads an accounts file into set.
func (s *accountSet) readAccountsFile(path string) error {
	data, err := readRegular(path)
	if err != nil {
		return err
	}
	s.source(path)
	mark := s.mark()
	if useScan && s.scanFast(data, 1) {
		if s.b.Len() == mark.n && len(s.probs) == mark.probs && onlyComments(data) {
			return fmt.Errorf("%s: the file holds no settings (write {} if that is meant)", path)
		}
		return nil
	}
	s.rollback(mark)
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind == yaml.ScalarNode && doc.Content[0].Tag == "!!null" {
		return fmt.Errorf("%s: the file holds no settings (write {} if that is meant)", path)
	}
	s.walk(doc.Content[0], 0)
	return nil
}

// onlyComments reports whether data holds nothing but comments and blanks.
func onlyComments(data []byte) bool {
	for _, line := range bytes.Split(data, []byte{'\n'}) {
		if t := bytes.TrimSpace(line); len(t) > 0 && t[0] != '#' {
			return false
		}
	}
	return true
}

// readAccountsFile reads Quota.AccountsFile, if set, into set. A relative
// path is relative to the config file's directory.
func (c *Config) readAccountsFile(set *accountSet) error {
	file := c.Quota.AccountsFile
	if file == "" {
		return nil
	}
	if !filepath.IsAbs(file) && c.Path != "" {
		file = filepath.Join(filepath.Dir(c.Path), file)
		c.Quota.AccountsFile = file
	}
	return set.readAccountsFile(file)
}
