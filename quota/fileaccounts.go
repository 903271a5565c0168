package quota

import (
	"bytes"
	"cmp"
	"iter"
	"slices"
	"strings"
)

// FileAccounts is the read-only table of file-managed accounts. A provider
// keeps a million of them: one string holds every name, sorted, and three
// slices hold where each ends, its limit and its status, about 40 bytes an
// account for a 25-byte name (a map of Account takes three times that).
// Lookups are a binary search. The zero value and nil are empty tables.
type FileAccounts struct {
	names  string
	ends   []uint32 // name i is names[ends[i-1]:ends[i]]
	limits []int64
	status []uint8 // index into statuses, | dryRunBit
	// hourly holds the hourly limits by index; few accounts have one, so
	// the table does not grow by a column for them.
	hourly map[uint32]int64
}

// dryRunBit marks an account in dry run in its status byte.
const dryRunBit = 0x80

var statuses = [...]Status{StatusActive, StatusSuspended, StatusTerminated}

// statusCode is s's index in statuses ("" is active, as ParseStatus has
// it); an unknown status is terminated, so that it never relays as if it
// were active.
func statusCode(s Status) uint8 {
	if st, err := ParseStatus(string(s)); err == nil {
		s = st
	}
	for i, st := range statuses {
		if st == s {
			return uint8(i)
		}
	}
	return uint8(len(statuses) - 1)
}

// Len is the number of accounts.
func (t *FileAccounts) Len() int {
	if t == nil {
		return 0
	}
	return len(t.ends)
}

func (t *FileAccounts) name(i int) string {
	start := uint32(0)
	if i > 0 {
		start = t.ends[i-1]
	}
	return t.names[start:t.ends[i]]
}

func (t *FileAccounts) at(i int) Account {
	st := t.status[i]
	return Account{Name: t.name(i), DailyLimit: t.limits[i], Status: statuses[st&^dryRunBit], Source: FromFile, DryRun: st&dryRunBit != 0,
		HourlyLimit: t.hourly[uint32(i)]}
}

// Get returns the account named name, which must be normalized
// (NormalizeName). The account's Name is name itself, not a piece of the
// table: whoever keeps it (a cache, a map of open transactions) must not
// keep a reloaded table's megabytes alive with it.
func (t *FileAccounts) Get(name string) (Account, bool) {
	if i := t.search(name); i < t.Len() && t.name(i) == name {
		a := t.at(i)
		a.Name = name
		return a, true
	}
	return Account{}, false
}

// All yields the accounts in name order.
func (t *FileAccounts) All() iter.Seq[Account] { return t.After("") }

// After yields the accounts named after name, in name order: a page of a
// listing starts where the last one ended. Their names share the table's
// memory; strings.Clone one to keep it.
func (t *FileAccounts) After(name string) iter.Seq[Account] {
	return func(yield func(Account) bool) {
		for i := t.search(name); i < t.Len(); i++ {
			if a := t.at(i); a.Name != name && !yield(a) {
				return
			}
		}
	}
}

// search is the index of the first name >= name.
func (t *FileAccounts) search(name string) int {
	lo, hi := 0, t.Len()
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if t.name(mid) < name {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo
}

// FileAccountsBuilder collects accounts in any order for a FileAccounts.
// The zero value is ready to use.
type FileAccountsBuilder struct {
	names  []byte
	ends   []uint32
	limits []int64
	status []uint8
	hourly map[int]int64 // by index of Add
}

// Add appends an account; name must be normalized, and is copied; status
// should be one of Statuses (or "", active). Its index (0, 1, …) is what Build reports
// duplicates with.
func (b *FileAccountsBuilder) Add(name []byte, limit int64, status Status, dryRun bool) {
	b.names = append(b.names, name...)
	b.ends = append(b.ends, uint32(len(b.names)))
	b.limits = append(b.limits, limit)
	code := statusCode(status)
	if dryRun {
		code |= dryRunBit
	}
	b.status = append(b.status, code)
}

// SetHourly gives the account added last an hourly limit.
func (b *FileAccountsBuilder) SetHourly(limit int64) {
	if len(b.ends) == 0 || limit <= 0 {
		return
	}
	if b.hourly == nil {
		b.hourly = make(map[int]int64)
	}
	b.hourly[len(b.ends)-1] = limit
}

// Len is the number of accounts added so far.
func (b *FileAccountsBuilder) Len() int { return len(b.ends) }

// Grow makes room for n more accounts whose names take nameBytes.
func (b *FileAccountsBuilder) Grow(n, nameBytes int) {
	b.names = slices.Grow(b.names, nameBytes)
	b.ends = slices.Grow(b.ends, n)
	b.limits = slices.Grow(b.limits, n)
	b.status = slices.Grow(b.status, n)
}

// Truncate forgets the accounts added after the first n.
func (b *FileAccountsBuilder) Truncate(n int) {
	if n >= len(b.ends) {
		return
	}
	end := uint32(0)
	if n > 0 {
		end = b.ends[n-1]
	}
	b.names, b.ends, b.limits, b.status = b.names[:end], b.ends[:n], b.limits[:n], b.status[:n]
	for i := range b.hourly {
		if i >= n {
			delete(b.hourly, i)
		}
	}
}

// Duplicate is a name given to two Add calls, by index: First is kept.
type Duplicate struct {
	Name         string
	First, Again int
}

// Build sorts the accounts into a table and reports every name added more
// than once; the table keeps the first. The builder is spent.
func (b *FileAccountsBuilder) Build() (*FileAccounts, []Duplicate) {
	names, ends, limits, status, hourly := b.names, b.ends, b.limits, b.status, b.hourly
	*b = FileAccountsBuilder{}
	name := func(i uint32) []byte {
		start := uint32(0)
		if i > 0 {
			start = ends[i-1]
		}
		return names[start:ends[i]]
	}
	order := make([]uint32, len(ends))
	for i := range order {
		order[i] = uint32(i)
	}
	// Ties by index: the first added comes first and is kept.
	slices.SortFunc(order, func(x, y uint32) int {
		return cmp.Or(bytes.Compare(name(x), name(y)), cmp.Compare(x, y))
	})
	var dups []Duplicate
	var sorted strings.Builder
	sorted.Grow(len(names))
	t := &FileAccounts{ends: make([]uint32, 0, len(order)), limits: make([]int64, 0, len(order)), status: make([]uint8, 0, len(order))}
	var kept uint32
	for k, i := range order {
		if k > 0 && bytes.Equal(name(kept), name(i)) {
			dups = append(dups, Duplicate{Name: string(name(i)), First: int(kept), Again: int(i)})
			continue
		}
		kept = i
		sorted.Write(name(i))
		t.ends = append(t.ends, uint32(sorted.Len()))
		if h, ok := hourly[int(i)]; ok {
			if t.hourly == nil {
				t.hourly = make(map[uint32]int64)
			}
			t.hourly[uint32(len(t.ends)-1)] = h
		}
		t.limits = append(t.limits, limits[i])
		t.status = append(t.status, status[i])
	}
	t.names = sorted.String()
	slices.SortFunc(dups, func(x, y Duplicate) int { return cmp.Compare(x.Again, y.Again) })
	return t, dups
}
