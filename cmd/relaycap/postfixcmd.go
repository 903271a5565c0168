package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/relaycap/relaycap/config"
	"github.com/relaycap/relaycap/postfixconf"
)

func newPostfixConfigCommand() *cobra.Command {
	var (
		path, queueDir      string
		main, master, shell bool
	)
	cmd := &cobra.Command{
		Use:   "postfix-config",
		Short: "Print the main.cf and master.cf lines for the configured sockets",
		Long: `Print the Postfix settings that wire relaycap in: SASL through Dovecot, the
policy service, the milter (last in smtpd_milters), and the five customer
listeners (25, 2525, 10025 with STARTTLS; 465, 10465 with implicit TLS) with
their error limits raised to smtpd_recipient_limit. Socket paths come from
the config; a unix socket inside Postfix's queue directory is named relative
to it, so a chrooted smtpd reaches it. Paste the output into main.cf and
master.cf, or run it with --postconf through a shell. It never edits
Postfix's files itself.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if main && master {
				return usageError(errors.New("--main and --master exclude each other; give neither for both"))
			}
			cfg, err := config.Load(path, cmd.Flags())
			if err != nil {
				return exitError{2, err}
			}
			o := postfixconf.FromConfig(cfg, queueDir)
			src := cfg.Path
			if src == "" {
				src = "built-in defaults"
			}
			w := cmd.OutOrStdout()
			if shell {
				out, err := postfixconf.Postconf(o)
				if err != nil {
					return exitError{2, err}
				}
				fmt.Fprintf(w, "# relaycap postfix-config --postconf (%s); run as root, then: postfix reload\n%s", src, out)
				return nil
			}
			if !master {
				out, err := postfixconf.Main(o)
				if err != nil {
					return exitError{2, err}
				}
				fmt.Fprintf(w, "# ---- main.cf: relaycap (from %s, queue_directory %s)\n%s", src, queueDir, out)
			}
			if !main {
				if !master {
					fmt.Fprintln(w)
				}
				fmt.Fprintf(w, "# ---- master.cf: the customer listeners\n%s", postfixconf.Master())
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&path, "config", "c", "", "config file (default "+config.DefaultPath+" if it exists)")
	f.StringVar(&queueDir, "queue-directory", postfixconf.DefaultQueueDirectory, "Postfix's queue_directory (postconf -h queue_directory)")
	f.BoolVar(&main, "main", false, "print the main.cf lines only")
	f.BoolVar(&master, "master", false, "print the master.cf entries only")
	f.BoolVar(&shell, "postconf", false, "print postconf -e / postconf -M commands instead")
	return cmd
}
