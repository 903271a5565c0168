package drive

import (
	"bufio"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
)

// RSSKiB reads a process's resident set size (VmRSS) from /proc.
func RSSKiB(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			return strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

// Mapping is one memory mapping of a process and its resident size.
type Mapping struct {
	Name   string // the mapped file, or [heap], [anon] …
	RSSKiB int64
}

// Mappings sums a process's resident memory per mapped file (anonymous
// mappings together as "[anon]"), largest first, from /proc/PID/smaps.
func Mappings(pid int) ([]Mapping, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/smaps", pid))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sum := map[string]int64{}
	name := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		if v, ok := strings.CutPrefix(line, "Rss:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			sum[name] += kb
			continue
		}
		// A mapping's header: address perms offset dev inode [path].
		if strings.Contains(fields[0], "-") && len(fields) >= 5 {
			name = "[anon]"
			if len(fields) >= 6 {
				name = fields[5]
			}
		}
	}
	out := make([]Mapping, 0, len(sum))
	for n, kb := range sum {
		out = append(out, Mapping{n, kb})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].RSSKiB > out[j].RSSKiB })
	return out, sc.Err()
}
