package quota

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unsafe"
)

func TestFileAccounts(t *testing.T) {
	var b FileAccountsBuilder
	b.Add([]byte("carol"), 3, StatusTerminated, false)
	b.Add([]byte("alice@example.com"), 1, StatusActive, false)
	b.Add([]byte("bob.smith"), 2, StatusSuspended, false)
	b.Add([]byte("alice@example.com"), 9, StatusSuspended, false)
	b.Add([]byte("carol"), 7, StatusActive, false)
	tab, dups := b.Build()
	if want := []Duplicate{{"alice@example.com", 1, 3}, {"carol", 0, 4}}; !reflect.DeepEqual(dups, want) {
		t.Errorf("duplicates = %v, want %v", dups, want)
	}
	want := []Account{
		{Name: "alice@example.com", DailyLimit: 1, Status: StatusActive, Source: FromFile},
		{Name: "bob.smith", DailyLimit: 2, Status: StatusSuspended, Source: FromFile},
		{Name: "carol", DailyLimit: 3, Status: StatusTerminated, Source: FromFile},
	}
	if got := slices.Collect(tab.All()); !reflect.DeepEqual(got, want) {
		t.Errorf("All = %v, want %v", got, want)
	}
	for _, a := range want {
		if got, ok := tab.Get(a.Name); !ok || got != a {
			t.Errorf("Get(%q) = %v, %v", a.Name, got, ok)
		}
	}
	for _, name := range []string{"", "alice", "alice@example.co", "alice@example.comm", "bob", "zed", "a"} {
		if got, ok := tab.Get(name); ok {
			t.Errorf("Get(%q) = %v, want none", name, got)
		}
	}
	if tab.Len() != 3 {
		t.Errorf("Len = %d", tab.Len())
	}
}

func TestFileAccountsEmpty(t *testing.T) {
	var none *FileAccounts
	if _, ok := none.Get("alice"); ok || none.Len() != 0 || len(slices.Collect(none.All())) != 0 {
		t.Error("a nil table is not empty")
	}
	var b FileAccountsBuilder
	tab, dups := b.Build()
	if _, ok := tab.Get(""); ok || tab.Len() != 0 || dups != nil {
		t.Error("an empty build is not empty")
	}
}

// TestFileAccountsFindsEvery looks up each of many names, and one more
// between each pair.
func TestFileAccountsFindsEvery(t *testing.T) {
	var b FileAccountsBuilder
	const n = 5000
	for i := n - 1; i >= 0; i-- {
		b.Add([]byte(fmt.Sprintf("u%05d", 2*i)), int64(i), StatusActive, false)
	}
	tab, dups := b.Build()
	if len(dups) != 0 || tab.Len() != n {
		t.Fatalf("%d duplicates, %d accounts", len(dups), tab.Len())
	}
	for i := range n {
		if a, ok := tab.Get(fmt.Sprintf("u%05d", 2*i)); !ok || a.DailyLimit != int64(i) {
			t.Fatalf("u%05d: %v %v", 2*i, a, ok)
		}
		if a, ok := tab.Get(fmt.Sprintf("u%05d", 2*i+1)); ok {
			t.Fatalf("u%05d found: %v", 2*i+1, a)
		}
	}
}

func BenchmarkFileAccountsGet(b *testing.B) {
	var fb FileAccountsBuilder
	for i := range 1000000 {
		fb.Add([]byte(fmt.Sprintf("user%07d@example.com", i)), 10, StatusActive, false)
	}
	tab, _ := fb.Build()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, ok := tab.Get(fmt.Sprintf("user%07d@example.com", i%1000000)); !ok {
			b.Fatal("missing")
		}
	}
}

func TestFileAccountsTruncate(t *testing.T) {
	var b FileAccountsBuilder
	b.Add([]byte("alice"), 1, StatusActive, false)
	b.Add([]byte("bob"), 2, StatusActive, false)
	b.Truncate(1)
	b.Add([]byte("carol"), 3, StatusSuspended, false)
	tab, _ := b.Build()
	if got := slices.Collect(tab.All()); len(got) != 2 || got[0].Name != "alice" || got[1].Name != "carol" || got[1].DailyLimit != 3 {
		t.Errorf("after Truncate: %v", got)
	}
}

// TestFileAccountsGetKeepsNoPieceOfTheTable: the name Get returns is the
// caller's string, so keeping it does not keep the table's names alive.
func TestFileAccountsGetKeepsNoPieceOfTheTable(t *testing.T) {
	var b FileAccountsBuilder
	b.Add([]byte("alice"), 1, StatusActive, false)
	tab, _ := b.Build()
	name := strings.Clone("alice")
	a, ok := tab.Get(name)
	if !ok || unsafe.StringData(a.Name) != unsafe.StringData(name) {
		t.Fatalf("Get(%q) = %+v, %v: the name is not the caller's", name, a, ok)
	}
}

// TestFileAccountsHourly: an hourly limit follows its account through the
// sort, and Truncate forgets the ones it drops.
func TestFileAccountsHourly(t *testing.T) {
	var b FileAccountsBuilder
	b.Add([]byte("zed"), 10, StatusActive, false)
	b.SetHourly(3)
	b.Add([]byte("amy"), 10, StatusActive, false)
	b.Add([]byte("bob"), 10, StatusActive, false)
	b.SetHourly(7)
	b.Truncate(2) // bob goes, and his hourly limit with him
	b.Add([]byte("cat"), 10, StatusActive, false)
	tab, _ := b.Build()
	for name, want := range map[string]int64{"zed": 3, "amy": 0, "cat": 0} {
		if a, ok := tab.Get(name); !ok || a.HourlyLimit != want {
			t.Errorf("%s: %+v %v, want hourly limit %d", name, a, ok, want)
		}
	}
}
