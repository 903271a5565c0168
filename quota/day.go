package quota

import (
	"sync/atomic"
	"time"
)

// Day is a calendar date in the configured zone, formatted "2006-01-02".
// Usage is kept per account and Day, so the reset at local midnight is
// implicit and 23- or 25-hour days follow the zone's rules.
type Day string

const dayLayout = "2006-01-02"

// DayOf returns the local calendar date of now in loc.
func DayOf(now time.Time, loc *time.Location) Day {
	return Day(now.In(loc).Format(dayLayout))
}

// NextMidnight returns the instant the day of now ends in loc: the next local
// 00:00. time.Date normalises a day overflow and DST gaps, so a 23- or
// 25-hour day ends at the right instant.
func NextMidnight(now time.Time, loc *time.Location) time.Time {
	y, m, d := now.In(loc).Date()
	return time.Date(y, m, d+1, 0, 0, 0, 0, loc)
}

// Time returns the local midnight that starts the day.
func (d Day) Time(loc *time.Location) (time.Time, error) {
	return time.ParseInLocation(dayLayout, string(d), loc)
}

// DayClock remembers the day the last call fell in, so that the hot path
// finds the day of now and its end with two comparisons instead of a
// conversion to the zone and a formatting per recipient. Safe for
// concurrent use; the zero value is ready.
type DayClock struct{ last atomic.Pointer[dayInfo] }

type dayInfo struct {
	loc        *time.Location
	start, end time.Time // the day's first instant and NextMidnight
	day        Day
}

// Of returns DayOf(now, loc) and NextMidnight(now, loc).
func (c *DayClock) Of(now time.Time, loc *time.Location) (Day, time.Time) {
	if d := c.last.Load(); d != nil && d.loc == loc && !now.Before(d.start) && now.Before(d.end) {
		return d.day, d.end
	}
	local := now.In(loc)
	y, m, dd := local.Date()
	// time.Date moves a midnight that a DST gap skips to the gap's end, the
	// day's first instant; an instant before start only misses the cache.
	d := &dayInfo{loc: loc, start: time.Date(y, m, dd, 0, 0, 0, 0, loc),
		end: time.Date(y, m, dd+1, 0, 0, 0, 0, loc), day: Day(local.Format(dayLayout))}
	c.last.Store(d)
	return d.day, d.end
}
