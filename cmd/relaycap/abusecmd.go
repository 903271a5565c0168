package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/relaycap/relaycap/admin"
	"github.com/relaycap/relaycap/config"
	"github.com/relaycap/relaycap/idheader"
)

// newAbuseCommand returns "relaycap abuse": the abuse desk's commands.
func newAbuseCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "abuse",
		Short: "Map a complaint to the account that relayed it, and act on it",
		Args:  subcommandOnly,
		RunE:  func(cmd *cobra.Command, _ []string) error { return subcommandOnly(cmd, nil) },
	}
	cmd.AddCommand(newAbuseReportCommand())
	return cmd
}

type abuseOptions struct {
	adminFlags
	decode             decodeOptions
	suspend, terminate bool
	reason             string
}

// abuseAction is what --suspend or --terminate, or the complaint a
// report without them records, did to one account.
type abuseAction struct {
	Account string `json:"account"`
	Action  string `json:"action"` // suspend | terminate | complaint
	Status  string `json:"status,omitempty"`
	Error   string `json:"error,omitempty"`
	// A complaint: how many within the window, and whether this one
	// suspended the account (abuse.auto_suspend_after).
	Complaints int  `json:"complaints,omitempty"`
	Suspended  bool `json:"suspended,omitempty"`
}

type abuseResult struct {
	Tokens  []foundToken  `json:"tokens"`
	Actions []abuseAction `json:"actions"`
}

func newAbuseReportCommand() *cobra.Command {
	var o abuseOptions
	cmd := &cobra.Command{
		Use:   "report {FILE | -} [--suspend | --terminate] [--reason TEXT]",
		Short: "Print the account, queue id, time and client of a complaint's identification header",
		Long: `Read a complaint (a bounced or forwarded message, or an ARF report; - for stdin),
find relaycap's identification header in it, and print the account, Postfix
queue id, time and client address it names, and record the complaint on that
account through the running daemon (abuse.auto_suspend_after complaints within
abuse.window suspend it). With --suspend or --terminate act on it instead: the
reason is recorded with the queue id and the token's time. Only a token sealed
for the very message it was found in is acted on (a header copied into another
message names an innocent account). A complaint whose token does not open
changes nothing.
Exit status: 0 found (and acted); 1 no token opened, or the daemon refused;
2 usage error, unreadable file or keys file.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageError(fmt.Errorf("want one complaint FILE (or - for stdin), got %d arguments", len(args)))
			}
			if o.suspend && o.terminate {
				return usageError(errors.New("give --suspend or --terminate, not both"))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error { return runAbuseReport(cmd, &o, args[0]) },
	}
	o.register(cmd)
	def := config.Defaults()
	fl := cmd.Flags()
	fl.BoolVar(&o.suspend, "suspend", false, "suspend the account")
	fl.BoolVar(&o.terminate, "terminate", false, "terminate the account")
	fl.StringVar(&o.reason, "reason", "abuse complaint", "why, for the audit trail")
	fl.StringVar(&o.decode.keysFile, "keys-file", def.IDHeader.KeysFile, "identification keys file")
	fl.StringVar(&o.decode.timezone, "timezone", def.Quota.Timezone, "also show the time in this zone")
	fl.StringVar(&o.decode.header, "header", def.IDHeader.Name, "header name to search for")
	return cmd
}

func runAbuseReport(cmd *cobra.Command, o *abuseOptions, file string) error {
	o.decode.config = o.config
	if err := o.decode.fromConfig(cmd); err != nil {
		return err
	}
	loc, err := time.LoadLocation(o.decode.timezone)
	if err != nil {
		return usageError(fmt.Errorf("--timezone: %w", err))
	}
	ring, err := idheader.LoadKeyring(o.decode.keysFile)
	if err != nil {
		return usageError(err)
	}
	var r io.Reader = cmd.InOrStdin()
	if file != "-" {
		f, err := os.Open(file)
		if err != nil {
			return usageError(err)
		}
		defer f.Close()
		r = f
	}
	found, err := idheader.FindToken(r, o.decode.header)
	if err != nil {
		return exitError{1, err}
	}
	if len(found) == 0 {
		return exitError{1, fmt.Errorf("no %s header in %s; nothing changed", o.decode.header, file)}
	}
	res := abuseResult{Tokens: []foundToken{}, Actions: []abuseAction{}}
	var opened []idheader.Fields
	w := cmd.OutOrStdout()
	for i, fd := range found {
		t := foundToken{Nested: fd.Nested, MessageID: fd.MessageID}
		f, err := ring.Open(fd.Token)
		if err != nil {
			t.Error = err.Error()
		} else {
			matches := f.BindsMessageID(fd.MessageID)
			t.decoded, t.MessageIDMatches = newDecoded(f, loc), &matches
			if matches {
				opened = append(opened, f)
			}
		}
		res.Tokens = append(res.Tokens, t)
		if !o.json {
			printFound(w, i, len(found), t, f, loc)
		}
	}
	if !anyOpened(res.Tokens) {
		return o.finish(w, res, exitError{1, fmt.Errorf("no %s header opened; nothing changed", o.decode.header)})
	}
	action := "complaint"
	switch {
	case o.suspend:
		action = "suspend"
	case o.terminate:
		action = "terminate"
	}
	if len(opened) == 0 && action == "complaint" {
		return o.finish(w, res, nil) // a copied header accuses nobody
	}
	if len(opened) == 0 {
		return o.finish(w, res, exitError{1, errors.New("every header that opened was sealed for another message (copied): not acting on it")})
	}
	c, err := o.client(cmd)
	if err != nil {
		return err
	}
	var firstErr error
	done := map[string]bool{}
	for _, f := range opened {
		if done[f.Account] {
			continue
		}
		done[f.Account] = true
		reason := fmt.Sprintf("%s (abuse report: queue id %s, sealed %s, client %s)",
			o.reason, f.QueueID, f.Time.UTC().Format(time.RFC3339), f.ClientAddr)
		a := abuseAction{Account: f.Account, Action: action}
		var err error
		if action == "complaint" {
			var got admin.Complaint
			got, err = c.Complaint(cmd.Context(), f.Account, admin.ComplaintRequest{Reason: reason, QueueID: f.QueueID})
			a.Status, a.Complaints, a.Suspended = got.Status, got.Complaints, got.Suspended
		} else {
			var acct admin.Account
			acct, err = c.SetStatus(cmd.Context(), f.Account, action, reason)
			a.Status = acct.Status
		}
		if err != nil {
			a.Error = err.Error()
			if firstErr == nil {
				firstErr = failed(err)
			}
		}
		res.Actions = append(res.Actions, a)
	}
	if !o.json {
		fmt.Fprintln(w)
		for _, a := range res.Actions {
			switch {
			case a.Error != "":
				fmt.Fprintf(w, "%s %s: refused: %s\n", action, a.Account, a.Error)
			case action == "complaint" && a.Suspended:
				fmt.Fprintf(w, "complaint against %s recorded: %d complaints, now %s\n", a.Account, a.Complaints, a.Status)
			case action == "complaint":
				fmt.Fprintf(w, "complaint against %s recorded: %d within abuse.window, account %s\n", a.Account, a.Complaints, a.Status)
			default:
				fmt.Fprintf(w, "%s %s: now %s\n", action, a.Account, a.Status)
			}
		}
	}
	return o.finish(w, res, firstErr)
}

// finish prints the JSON result, if asked for, and returns err.
func (o *abuseOptions) finish(w io.Writer, res abuseResult, err error) error {
	if o.json {
		if werr := writeJSON(w, res); werr != nil {
			return werr
		}
	}
	return err
}

func anyOpened(tokens []foundToken) bool {
	for _, t := range tokens {
		if t.decoded != nil {
			return true
		}
	}
	return false
}
