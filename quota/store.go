package quota

import "errors"

// ErrStore marks a failure of the Store. Adapters answer it with a temporary
// failure: nothing was counted, and the client retries.
var ErrStore = errors.New("quota store failure")

// DayCount is a number of relays on one day.
type DayCount struct {
	Day Day
	N   int64
}

// Store keeps the daily usage of each account, the hot path of every
// relay; the store-managed accounts are behind Accounts. The Engine serialises calls per account,
// so an implementation need not guard one account's counter against itself.
type Store interface {
	// Usage returns the relays committed for account on day.
	Usage(account string, day Day) (int64, error)
	// AddUsage adds each count to account's usage on its day, all or
	// nothing, and returns the new totals in the same order. It returns
	// only once the increments are durable.
	AddUsage(account string, add []DayCount) ([]int64, error)
	// Writable reports an error when AddUsage would fail now for a reason
	// that lasts, such as a nearly full disk, so that the engine refuses a
	// recipient before the client sends its message, not after.
	Writable() error
}
