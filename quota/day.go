package quota

import "time"

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
