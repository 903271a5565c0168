package main

import (
	"errors"
	"fmt"
	"io/fs"

	"github.com/spf13/cobra"

	"github.com/relaycap/relaycap/config"
	"github.com/relaycap/relaycap/daemon"
)

func newConfigCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Check or print the configuration",
		Args:  subcommandOnly,
		RunE:  func(cmd *cobra.Command, _ []string) error { return subcommandOnly(cmd, nil) },
	}
	var path string
	check := &cobra.Command{
		Use:   "check",
		Short: "Validate a config file; print every problem and exit 2, or exit 0",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(path, cmd.Flags())
			if err != nil {
				var p config.Problems
				if errors.As(err, &p) {
					for _, line := range p {
						fmt.Fprintln(cmd.ErrOrStderr(), line)
					}
					return exitError{2, fmt.Errorf("%d problem(s) in the configuration", len(p))}
				}
				return exitError{2, err}
			}
			if err := daemon.Preflight(cfg); err != nil {
				fmt.Fprintln(cmd.ErrOrStderr(), err)
				if errors.Is(err, fs.ErrPermission) {
					fmt.Fprintln(cmd.ErrOrStderr(), "(run config check as root or as the daemon's user, who can read the keys file)")
				}
				return exitError{2, errors.New("the configuration names files or groups that do not work")}
			}
			src := cfg.Path
			if src == "" {
				src = "built-in defaults"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "config OK (%s): %d file-managed accounts, zone %s, milter %s, policy %s\n",
				src, cfg.Quota.Accounts.Len(), cfg.Quota.Timezone, cfg.Milter.Listen, cfg.Policy.Listen)
			return nil
		},
	}
	check.Flags().StringVarP(&path, "config", "c", "", "config file (default "+config.DefaultPath+" if it exists)")
	config.BindFlags(check.Flags())
	defaults := &cobra.Command{
		Use:   "defaults",
		Short: "Print the built-in defaults as a commented YAML file",
		Args:  noArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprint(cmd.OutOrStdout(), config.DefaultYAML())
		},
	}
	cmd.AddCommand(check, defaults)
	return cmd
}
