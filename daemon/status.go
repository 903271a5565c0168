package daemon

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/relaycap/relaycap/admin"
	"github.com/relaycap/relaycap/metrics"
	"github.com/relaycap/relaycap/quota"
)

// topN is how many accounts `relaycap status` shows.
const topN = 5

// statusState is what the status screen needs besides the snapshot.
type statusState struct {
	version string
	started time.Time

	mu     sync.Mutex
	reload admin.StatusReload
}

func (d *Daemon) startStatus(version string) {
	if version == "" {
		version = "dev"
	}
	now := d.now()
	d.status.version, d.status.started = version, now
	d.status.reload = admin.StatusReload{Time: now, OK: true}
	d.metrics.Loaded(unixSeconds(now))
}

// reloaded records a reload's outcome for the metrics and the status.
func (d *Daemon) reloaded(err error) {
	now := d.now()
	d.metrics.Reloaded(err == nil, unixSeconds(now))
	r := admin.StatusReload{Time: now, OK: err == nil}
	if err != nil {
		r.Error = err.Error()
	}
	d.status.mu.Lock()
	d.status.reload = r
	d.status.mu.Unlock()
}

// adminStatus answers GET /v1/status from the same snapshot a scrape reads.
func (d *Daemon) adminStatus(ctx context.Context) (admin.Status, error) {
	snap := d.snapshot()
	if snap.AccountsErr != nil {
		return admin.Status{}, snap.AccountsErr
	}
	now := d.now()
	day := quota.DayOf(now, d.Config().Location)
	top, err := d.acctStore.Top(ctx, day, topN)
	if err != nil {
		return admin.Status{}, err
	}
	st := admin.Status{
		Version:       d.status.version,
		StartedAt:     d.status.started,
		UptimeSeconds: int64(now.Sub(d.status.started) / time.Second),
		Health:        "ok",
		Backend:       snap.Backend,
		StateDir:      snap.StateDir,
		FreeBytes:     int64(snap.FreeBytes),
		MinFreeBytes:  int64(snap.MinFreeBytes),
		KeyIDs:        append([]string{}, snap.KeyIDs...),
		Day:           string(day),
		RelaysUsed:    snap.UsedToday,
		Top:           []admin.AccountUsage{},
	}
	if err := d.Health(); err != nil {
		st.Health = err.Error()
	}
	for service, addr := range snap.Listeners {
		st.Listeners = append(st.Listeners, admin.StatusListener{Service: service, Address: addr})
	}
	sort.Slice(st.Listeners, func(i, j int) bool { return st.Listeners[i].Service < st.Listeners[j].Service })
	st.RelaysSold = snap.Accounts.Sold
	for _, s := range metrics.Statuses {
		n := snap.Accounts.Count(s, quota.FromFile) + snap.Accounts.Count(s, quota.FromStore)
		st.Accounts = append(st.Accounts, admin.StatusCount{Status: string(s), Count: n})
	}
	for _, u := range top {
		st.Top = append(st.Top, admin.AccountUsage{Account: u.Account, Used: u.Used})
	}
	d.status.mu.Lock()
	st.LastReload = d.status.reload
	d.status.mu.Unlock()
	return st, nil
}

// routePatterns are the admin routes as the metrics label them.
func routePatterns(routes []admin.Route) []string {
	out := make([]string, len(routes))
	for i, r := range routes {
		out[i] = r.Method + " " + r.Path
	}
	return out
}
