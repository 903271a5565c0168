package badgerstore

import (
	"context"
	"fmt"
	"testing"

	"github.com/relaycap/relaycap/quota"
)

// BenchmarkTop is one top-10 of a day over 20 000 accounts with 10 days of
// history each (200 000 usage keys): Top reads every usage key.
func BenchmarkTop(b *testing.B) {
	s := open(b, b.TempDir())
	defer s.Close()
	days := make([]quota.DayCount, 10)
	for d := range days {
		days[d] = quota.DayCount{Day: quota.Day(fmt.Sprintf("2026-11-%02d", 18+d)), N: 1}
	}
	for i := range 20000 {
		if _, err := s.AddUsage(fmt.Sprintf("user%05d@example.com", i), days); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for b.Loop() {
		top, err := s.Top(context.Background(), "2026-11-27", 10)
		if err != nil || len(top) != 10 {
			b.Fatal(top, err)
		}
	}
}
