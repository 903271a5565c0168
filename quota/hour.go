package quota

import (
	"strings"
	"time"
)

// HourOf returns the counter window of now's clock hour in loc: "h", the
// local date and hour, and the zone's offset ("h2026-11-01T01-0400").
// The offset tells apart the two 1 o'clock hours of a fall-back day. The
// leading "h" keeps hour windows apart from days in every store: they
// sort after every day, so a day's history or top list never sees them.
func HourOf(now time.Time, loc *time.Location) Day {
	return Day("h" + now.In(loc).Format("2006-01-02T15-0700"))
}

// IsHour reports whether d is an hour window of HourOf, not a day.
func (d Day) IsHour() bool { return strings.HasPrefix(string(d), "h") }

// HourWindowTTL is how long a store keeps an hour window's count: the
// hour itself, with a margin for clocks that disagree.
const HourWindowTTL = 3 * time.Hour

// NextHour returns the instant the clock hour of now ends in loc. It steps
// back to the local hour's start and adds an hour of real time, so a DST
// change (at an hour boundary in every zone) gives the right instant.
func NextHour(now time.Time, loc *time.Location) time.Time {
	t := now.In(loc)
	into := time.Duration(t.Minute())*time.Minute + time.Duration(t.Second())*time.Second + time.Duration(t.Nanosecond())
	return t.Add(-into).Add(time.Hour)
}
