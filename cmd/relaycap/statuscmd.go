package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/relaycap/relaycap/admin"
)

// newStatusCommand returns "relaycap status": the running daemon on one
// screen, read through the admin API.
func newStatusCommand() *cobra.Command {
	var f adminFlags
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the running daemon at a glance: health, keys, listeners, accounts, today's relays",
		Long: `Show the running daemon on one screen: version, uptime, health, store backend,
free space of the state directory, identification key ids, listeners, accounts
by status, today's relays used vs sold, the top 5 accounts of today and the
last reload. It reads the admin API (--config's admin.listen, or --admin).`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return call(cmd, &f, func(ctx context.Context, c *admin.Client) (admin.Status, error) {
				return c.Status(ctx)
			}, printStatus)
		},
	}
	f.register(cmd)
	return cmd
}

func printStatus(w io.Writer, s admin.Status) {
	keys := strings.Join(s.KeyIDs, ", ")
	if keys == "" {
		keys = "none: authenticated mail is deferred (451 4.3.0)"
	} else {
		keys += " (sealing: " + s.KeyIDs[0] + ")"
	}
	var listeners, accounts []string
	for _, l := range s.Listeners {
		listeners = append(listeners, l.Service+" "+l.Address)
	}
	for _, a := range s.Accounts {
		accounts = append(accounts, fmt.Sprintf("%d %s", a.Count, a.Status))
	}
	reload := "ok"
	if !s.LastReload.OK {
		reload = "FAILED: " + s.LastReload.Error
	}
	used := fmt.Sprintf("%d of %d sold", s.RelaysUsed, s.RelaysSold)
	if s.RelaysSold > 0 {
		used += fmt.Sprintf(" (%.1f%%)", 100*float64(s.RelaysUsed)/float64(s.RelaysSold))
	}
	table(w, [][]string{
		{"version:", s.Version},
		{"uptime:", (time.Duration(s.UptimeSeconds) * time.Second).String() + " (since " + localTime(s.StartedAt) + ")"},
		{"health:", s.Health},
		{"store:", s.Backend + " in " + s.StateDir},
		{"free space:", mib(s.FreeBytes) + " (keeps " + mib(s.MinFreeBytes) + " free)"},
		{"key ids:", keys},
		{"listeners:", strings.Join(listeners, ", ")},
		{"accounts:", strings.Join(accounts, ", ") + " (file and store)"},
		{"relays today:", used + ", " + s.Day},
		{"last reload:", localTime(s.LastReload.Time) + " " + reload},
	})
	fmt.Fprintln(w, "top accounts today:")
	if len(s.Top) == 0 {
		fmt.Fprintln(w, "  (none)")
		return
	}
	rows := [][]string{}
	for i, u := range s.Top {
		rows = append(rows, []string{"  " + strconv.Itoa(i+1) + ".", u.Account, strconv.FormatInt(u.Used, 10)})
	}
	table(w, rows)
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
