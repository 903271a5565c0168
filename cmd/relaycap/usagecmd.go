package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/relaycap/relaycap/admin"
)

// newUsageCommand returns "relaycap usage": an account's day, its history,
// or the top accounts of today.
func newUsageCommand() *cobra.Command {
	var f adminFlags
	var days, top int
	cmd := &cobra.Command{
		Use:   "usage {NAME [--days N] | --top N}",
		Short: "Show an account's usage today (or its last N days), or the top N accounts of today",
		Long: `Show an account's usage today: used, in flight, limit (with today's top-ups),
remaining, status and when it resets; with --days N its committed relays per day
over the last N days; with --top N the N accounts with the most relays today.
Works for every login, also file-managed ones and those on the default limit.`,
		Args: func(cmd *cobra.Command, args []string) error {
			switch {
			case top > 0 && (len(args) > 0 || cmd.Flags().Changed("days")):
				return usageError(errors.New("give NAME [--days N] or --top N, not both"))
			case cmd.Flags().Changed("top") && top <= 0:
				return usageError(errors.New("--top must be a positive number"))
			case top == 0 && len(args) != 1:
				return usageError(fmt.Errorf("want one account NAME (or --top N), got %d arguments", len(args)))
			case cmd.Flags().Changed("days") && days <= 0:
				return usageError(errors.New("--days must be a positive number"))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case top > 0:
				return call(cmd, &f, func(ctx context.Context, c *admin.Client) (admin.Top, error) {
					return c.Top(ctx, top)
				}, printTop)
			case days > 0:
				return call(cmd, &f, func(ctx context.Context, c *admin.Client) (admin.History, error) {
					return c.History(ctx, args[0], days)
				}, printHistory)
			}
			return call(cmd, &f, func(ctx context.Context, c *admin.Client) (admin.Usage, error) {
				return c.Usage(ctx, args[0])
			}, printUsage)
		},
	}
	f.register(cmd)
	cmd.Flags().IntVar(&days, "days", 0, "the account's relays per day over the last N days, today included")
	cmd.Flags().IntVar(&top, "top", 0, "the N accounts with the most relays today")
	return cmd
}

func printUsage(w io.Writer, u admin.Usage) {
	rows := [][]string{
		{"account:", u.Account},
		{"day:", u.Day},
		{"used:", strconv.FormatInt(u.Used, 10)},
		{"in flight:", strconv.FormatInt(u.Reserved, 10)},
		{"limit:", strconv.FormatInt(u.Limit, 10)},
		{"remaining:", strconv.FormatInt(u.Remaining, 10)},
	}
	if u.HourlyLimit > 0 {
		rows = append(rows, []string{"this hour:", fmt.Sprintf("%d of %d (hourly limit)", u.HourUsed, u.HourlyLimit)})
	}
	if u.DryRun {
		rows = append(rows, []string{"dry run:", fmt.Sprintf("limits not enforced; %d relays today would have been refused", u.WouldRefuse)})
	}
	rows = append(rows, []string{"status:", u.Status + " (" + u.Source + ")"}, []string{"resets at:", u.ResetsAt})
	table(w, rows)
}

func printHistory(w io.Writer, h admin.History) {
	fmt.Fprintf(w, "%s, %s to %s (days without relays left out)\n", h.Account, h.From, h.To)
	rows := [][]string{{"DAY", "USED"}}
	var total int64
	for _, d := range h.Days {
		rows = append(rows, []string{d.Day, strconv.FormatInt(d.Used, 10)})
		total += d.Used
	}
	rows = append(rows, []string{"total", strconv.FormatInt(total, 10)})
	table(w, rows)
}

func printTop(w io.Writer, t admin.Top) {
	fmt.Fprintf(w, "top accounts of %s\n", t.Day)
	rows := [][]string{{"#", "ACCOUNT", "USED"}}
	for i, a := range t.Accounts {
		rows = append(rows, []string{strconv.Itoa(i + 1), a.Account, strconv.FormatInt(a.Used, 10)})
	}
	table(w, rows)
}
