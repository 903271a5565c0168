// Command relaycap is the relay quota daemon for Postfix and its command
// line: serve, config, id, account, usage, abuse, version. main only wires.
package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

// version and commit are set at build time with
// -ldflags "-X main.version=… -X main.commit=…" (make build, make deb rpm).
var (
	version = "dev"
	commit  = "unknown"
)

func main() {
	root := newRootCommand()
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "relaycap:", err)
		os.Exit(exitCode(err))
	}
}

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "relaycap",
		Short: "Daily relay quotas for an authenticated Postfix relay (milter + policy service)",
		Long: `relaycap sits beside Postfix: its policy service rejects over-quota recipients
early and its milter counts every accepted recipient ("relay") per SASL account
and calendar day, and stamps relayed mail with an encrypted identification header.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          subcommandOnly,
		RunE:          func(cmd *cobra.Command, _ []string) error { return subcommandOnly(cmd, nil) },
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return usageError(err) })
	root.AddCommand(newServeCommand(), newStatusCommand(), newConfigCommand(), newIDCommand(), newNotifyCommand(), newPostfixConfigCommand(),
		newAccountCommand(), newUsageCommand(), newAbuseCommand(), newVersionCommand())
	// Separate lines, so helpers adding commands above do not conflict here.
	root.AddCommand(newManCommand())
	// Man pages carry no generation date, so a package build is reproducible.
	root.DisableAutoGenTag = true
	return root
}

// exitError carries an exit code: 2 for usage and config errors, 1 for
// failures at run time.
type exitError struct {
	code int
	err  error
}

func (e exitError) Error() string { return e.err.Error() }
func (e exitError) Unwrap() error { return e.err }
func (e exitError) ExitCode() int { return e.code }

func usageError(err error) error { return exitError{2, err} }

// subcommandOnly refuses a command group run without, or with an unknown,
// subcommand: a usage error (exit 2), so that a typo in a unit file or a
// script does not pass as success.
func subcommandOnly(cmd *cobra.Command, args []string) error {
	var names []string
	for _, c := range cmd.Commands() {
		if c.IsAvailableCommand() {
			names = append(names, c.Name())
		}
	}
	if len(args) > 0 {
		return usageError(fmt.Errorf("unknown command %q for %q; try one of: %s", args[0], cmd.CommandPath(), strings.Join(names, ", ")))
	}
	cmd.Help()
	return usageError(fmt.Errorf("%s: missing subcommand: %s", cmd.CommandPath(), strings.Join(names, ", ")))
}

func exitCode(err error) int {
	var ec interface{ ExitCode() int }
	if errors.As(err, &ec) {
		return ec.ExitCode()
	}
	return 1
}

func newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  noArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintf(cmd.OutOrStdout(), "relaycap %s (commit %s)\n", version, commit)
		},
	}
}
