package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// manSection is 8 for the daemon (a system administration command) and 1
// for the commands people run.
func manSection(c *cobra.Command) string {
	if c.CommandPath() == "relaycap serve" {
		return "8"
	}
	return "1"
}

func newManCommand() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "man --dir DIR",
		Short: "Write the man pages of every command into DIR",
		Long: `Write one man page per command, generated from the command tree:
relaycap-serve.8 and relaycap.1, relaycap-config-check.1, … for the rest.
The date in their header is $SOURCE_DATE_EPOCH when it is set (reproducible
package builds), else today.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dir == "" {
				return usageError(fmt.Errorf("%s needs --dir", cmd.CommandPath()))
			}
			date, err := manDate(os.Getenv("SOURCE_DATE_EPOCH"), time.Now())
			if err != nil {
				return usageError(err)
			}
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
			n, err := writeManTree(cmd.Root(), dir, date)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%d man pages in %s\n", n, dir)
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "folder to write the pages into (created if missing)")
	return cmd
}

// manDate is the pages' date: SOURCE_DATE_EPOCH (reproducible-builds.org)
// when set, else now.
func manDate(epoch string, now time.Time) (time.Time, error) {
	if epoch == "" {
		return now.UTC(), nil
	}
	sec, err := strconv.ParseInt(epoch, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q is not a number of seconds", epoch)
	}
	return time.Unix(sec, 0).UTC(), nil
}

// writeManTree writes a page for c and each available subcommand below it,
// and returns how many.
func writeManTree(c *cobra.Command, dir string, date time.Time) (int, error) {
	if !c.IsAvailableCommand() && c.HasParent() || c.IsAdditionalHelpTopicCommand() {
		return 0, nil
	}
	n := 0
	for _, sub := range c.Commands() {
		k, err := writeManTree(sub, dir, date)
		if err != nil {
			return n, err
		}
		n += k
	}
	section := manSection(c)
	header := &doc.GenManHeader{Title: strings.ToUpper(strings.ReplaceAll(c.CommandPath(), " ", "-")),
		Section: section, Date: &date, Source: "relaycap " + version, Manual: "relaycap manual"}
	var b strings.Builder
	if err := doc.GenMan(c, header, &b); err != nil {
		return n, err
	}
	// doc.GenMan gives every SEE ALSO entry the page's own section.
	page := strings.ReplaceAll(b.String(), "relaycap-serve("+section+")", "relaycap-serve(8)")
	if section == "8" {
		page = strings.ReplaceAll(page, "relaycap(8)", "relaycap(1)")
	}
	name := strings.ReplaceAll(c.CommandPath(), " ", "-") + "." + section
	if err := os.WriteFile(filepath.Join(dir, name), []byte(page), 0o644); err != nil {
		return n, err
	}
	return n + 1, nil
}
