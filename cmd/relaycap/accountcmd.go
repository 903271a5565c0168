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

// newAccountCommand returns "relaycap account": the store-managed accounts
// of the running daemon, through its admin API.
func newAccountCommand() *cobra.Command {
	var f adminFlags
	cmd := &cobra.Command{
		Use:   "account",
		Short: "Create, buy relays for, suspend, show and list accounts (through the running daemon)",
		Long: `Manage the store-managed accounts of the running daemon through its admin API
(admin.listen of --config, or --admin). Accounts named in the config file are
read-only here. Exit status: 0 done; 1 refused or failed, with the daemon's
message (also when the daemon is not running); 2 usage error.`,
		Args: subcommandOnly,
		RunE: func(cmd *cobra.Command, _ []string) error { return subcommandOnly(cmd, nil) },
	}
	f.register(cmd)
	cmd.AddCommand(newAccountSetCommand(&f), newAccountPurchaseCommand(&f),
		newAccountStatusCommand(&f, "suspend", "Suspend an account: its next RCPT and its messages not yet accepted are refused (5.7.1)"),
		newAccountStatusCommand(&f, "resume", "Resume a suspended account"),
		newAccountStatusCommand(&f, "terminate", "Terminate an account for good (it can then only be deleted)"),
		newAccountDeleteCommand(&f), newAccountShowCommand(&f), newAccountListCommand(&f))
	return cmd
}

func newAccountSetCommand(f *adminFlags) *cobra.Command {
	var v setValues
	cmd := &cobra.Command{
		Use:   "set NAME [--daily-limit N] [--hourly-limit N] [--dry-run=true|false] [--note TEXT]",
		Short: "Create an account or change its daily or hourly limit, dry run or note",
		Args:  exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			req, err := setRequest(cmd, v)
			if err != nil {
				return err
			}
			return call(cmd, f, func(ctx context.Context, c *admin.Client) (admin.Account, error) {
				return c.PutAccount(ctx, args[0], req)
			}, printAccount)
		},
	}
	cmd.Flags().Int64Var(&v.limit, "daily-limit", 0, "relays per day (required for a new account)")
	cmd.Flags().Int64Var(&v.hourly, "hourly-limit", 0, "relays in one clock hour (0 = quota.default_hourly_limit)")
	cmd.Flags().BoolVar(&v.dryRun, "dry-run", false, "this account's limits in dry run: counted and logged would_refuse, not enforced")
	cmd.Flags().StringVar(&v.note, "note", "", "a note for the support desk (plan, customer number)")
	return cmd
}

// setValues are the flags of account set.
type setValues struct {
	limit, hourly int64
	dryRun        bool
	note          string
}

// setRequest sends only the flags given: the others stay as they are.
func setRequest(cmd *cobra.Command, v setValues) (admin.AccountRequest, error) {
	var req admin.AccountRequest
	if cmd.Flags().Changed("daily-limit") {
		if v.limit < 0 {
			return req, usageError(errors.New("--daily-limit must not be negative"))
		}
		req.DailyLimit = &v.limit
	}
	if cmd.Flags().Changed("hourly-limit") {
		if v.hourly < 0 {
			return req, usageError(errors.New("--hourly-limit must not be negative"))
		}
		req.HourlyLimit = &v.hourly
	}
	if cmd.Flags().Changed("dry-run") {
		req.DryRun = &v.dryRun
	}
	if cmd.Flags().Changed("note") {
		req.Note = &v.note
	}
	if req.DailyLimit == nil && req.HourlyLimit == nil && req.DryRun == nil && req.Note == nil {
		return req, usageError(errors.New("nothing to set: give --daily-limit, --hourly-limit, --dry-run and/or --note"))
	}
	return req, nil
}

func newAccountPurchaseCommand(f *adminFlags) *cobra.Command {
	var id string
	var todayOnly bool
	cmd := &cobra.Command{
		Use:   "purchase NAME N --purchase-id ID [--today-only]",
		Short: "Add N relays per day from now on (today included), or with --today-only to today alone",
		Long: `Add N relays to the daily limit from now on, today included; with --today-only
add them to today's limit alone (the next local midnight drops them). The
purchase id makes it idempotent: running it again with the same id adds nothing
and prints the first result ("replay"); the same id with another N is refused.`,
		Args: exactArgs("NAME", "N"),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := strconv.ParseInt(args[1], 10, 64)
			if err != nil || n <= 0 {
				return usageError(fmt.Errorf("N must be a positive number of relays, got %q", args[1]))
			}
			if id == "" {
				return usageError(errors.New("--purchase-id is required (the billing system's order or invoice id)"))
			}
			req := admin.PurchaseRequest{Relays: n, PurchaseID: id, TodayOnly: todayOnly}
			return call(cmd, f, func(ctx context.Context, c *admin.Client) (admin.Purchase, error) {
				return c.Purchase(ctx, args[0], req)
			}, printPurchase)
		},
	}
	cmd.Flags().StringVar(&id, "purchase-id", "", "the purchase's unique id (idempotency key)")
	cmd.Flags().BoolVar(&todayOnly, "today-only", false, "add the relays to today's limit only")
	return cmd
}

func newAccountStatusCommand(f *adminFlags, action, short string) *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   action + " NAME --reason TEXT",
		Short: short,
		Args:  exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if reason == "" {
				return usageError(errors.New("--reason is required: it goes into the audit trail"))
			}
			return call(cmd, f, func(ctx context.Context, c *admin.Client) (admin.Account, error) {
				return c.SetStatus(ctx, args[0], action, reason)
			}, printAccount)
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why (recorded in the audit trail)")
	return cmd
}

func newAccountDeleteCommand(f *adminFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete an account; its usage history, purchases and audit trail stay",
		Args:  exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return call(cmd, f, func(ctx context.Context, c *admin.Client) (admin.Deleted, error) {
				return c.DeleteAccount(ctx, args[0])
			}, func(w io.Writer, d admin.Deleted) { fmt.Fprintf(w, "deleted %s\n", d.Account) })
		},
	}
}

func newAccountShowCommand(f *adminFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "show NAME",
		Short: "Show an account: limit, usage today, purchases and the last audit entries",
		Args:  exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return call(cmd, f, func(ctx context.Context, c *admin.Client) (admin.AccountDetail, error) {
				return c.ShowAccount(ctx, args[0])
			}, printDetail)
		},
	}
}

func newAccountListCommand(f *adminFlags) *cobra.Command {
	var status string
	cmd := &cobra.Command{
		Use:   "list [--status active|suspended|terminated]",
		Short: "List the accounts (store- and file-managed) in name order",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return call(cmd, f, func(ctx context.Context, c *admin.Client) ([]admin.Account, error) {
				return listAll(ctx, c, status)
			}, printAccounts)
		},
	}
	cmd.Flags().StringVar(&status, "status", "", "only accounts with this status")
	return cmd
}

// listAll follows the pages to the end.
func listAll(ctx context.Context, c *admin.Client, status string) ([]admin.Account, error) {
	all := []admin.Account{}
	after := ""
	for {
		page, err := c.ListAccounts(ctx, status, after, 1000)
		if err != nil {
			return nil, err
		}
		all = append(all, page.Accounts...)
		if page.Next == "" {
			return all, nil
		}
		after = page.Next
	}
}

func printAccount(w io.Writer, a admin.Account) {
	table(w, [][]string{
		{"account:", a.Name},
		{"daily limit:", limitText(a)},
		{"hour limit:", hourlyText(a.HourlyLimit)},
		{"dry run:", strconv.FormatBool(a.DryRun)},
		{"status:", a.Status},
		{"source:", a.Source},
		{"note:", a.Note},
	})
}

func hourlyText(n int64) string {
	if n == 0 {
		return "default"
	}
	return strconv.FormatInt(n, 10)
}

func limitText(a admin.Account) string {
	s := strconv.FormatInt(a.DailyLimit, 10)
	if a.TopUpToday > 0 {
		s += fmt.Sprintf(" (+%d today only)", a.TopUpToday)
	}
	return s
}

func printPurchase(w io.Writer, p admin.Purchase) {
	kind := "per day from now on"
	if p.TodayOnly {
		kind = "for " + p.Day + " only"
	}
	replay := ""
	if p.Replay {
		replay = " (replay: already recorded, nothing added)"
	}
	fmt.Fprintf(w, "purchase %s: %d relays %s for %s%s\n", p.PurchaseID, p.Relays, kind, p.Account, replay)
	fmt.Fprintf(w, "daily limit %d, limit of %s %d\n", p.DailyLimit, p.Day, p.DayLimit)
}

func printDetail(w io.Writer, d admin.AccountDetail) {
	printAccount(w, d.Account)
	u := d.Usage
	fmt.Fprintf(w, "\ntoday (%s): %d used, %d in flight, limit %d, %d remaining; resets at %s\n",
		u.Day, u.Used, u.Reserved, u.Limit, u.Remaining, u.ResetsAt)
	if len(d.Purchases) > 0 {
		fmt.Fprintln(w, "\npurchases (newest first):")
		rows := [][]string{{"  TIME", "ID", "RELAYS", "KIND", "BY"}}
		for _, p := range d.Purchases {
			kind := "daily"
			if p.TodayOnly {
				kind = p.Day + " only"
			}
			rows = append(rows, []string{"  " + localTime(p.Time), p.PurchaseID, strconv.FormatInt(p.Relays, 10), kind, p.Actor})
		}
		table(w, rows)
	}
	if len(d.Audit) > 0 {
		fmt.Fprintln(w, "\naudit (newest first):")
		printAudit(w, d.Audit)
	}
}

func printAudit(w io.Writer, entries []admin.AuditEntry) {
	rows := [][]string{{"  TIME", "BY", "ACTION", "BEFORE → AFTER", "REASON"}}
	for _, e := range entries {
		rows = append(rows, []string{"  " + localTime(e.Time), e.Actor, e.Action,
			stateText(e.Before) + " → " + stateText(e.After), e.Reason})
	}
	table(w, rows)
}

func stateText(s *admin.State) string {
	if s == nil {
		return "-"
	}
	t := fmt.Sprintf("%d/%s", s.DailyLimit, s.Status)
	if s.TopUp > 0 {
		t += fmt.Sprintf("+%d", s.TopUp)
	}
	return t
}

func printAccounts(w io.Writer, accts []admin.Account) {
	rows := [][]string{{"ACCOUNT", "DAILY LIMIT", "STATUS", "SOURCE", "NOTE"}}
	for _, a := range accts {
		rows = append(rows, []string{a.Name, limitText(a), a.Status, a.Source, a.Note})
	}
	table(w, rows)
}
