package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/relaycap/relaycap/admin"
	"github.com/relaycap/relaycap/config"
	"github.com/relaycap/relaycap/sockets"
)

// adminFlags find the running daemon: --admin, else the admin.listen of
// --config (or of the default config file, or the built-in default).
type adminFlags struct {
	config, admin, tokenFile string
	json                     bool
}

func (f *adminFlags) register(cmd *cobra.Command) {
	p := cmd.PersistentFlags()
	p.StringVarP(&f.config, "config", "c", "", "find the daemon through this config file's admin.listen (default "+config.DefaultPath+" if it exists)")
	p.StringVar(&f.admin, "admin", "", "the daemon's admin address, unix:/path or inet:host:port (instead of --config)")
	p.StringVar(&f.tokenFile, "token-file", "", "bearer token file, for an inet: admin address")
	p.BoolVar(&f.json, "json", false, "print JSON instead of a table")
}

// addr resolves the admin address. An unreadable or broken default config
// only warns (an operator may not read the daemon's config); an explicit
// one is a usage error.
func (f *adminFlags) addr(stderr io.Writer) (string, error) {
	if f.admin != "" {
		if _, _, err := sockets.ParseListen(f.admin); err != nil {
			return "", usageError(fmt.Errorf("--admin: %w", err))
		}
		return f.admin, nil
	}
	cfg, err := config.Load(f.config, nil)
	if err != nil {
		if f.config != "" {
			return "", usageError(err)
		}
		fmt.Fprintf(stderr, "relaycap: not using %s: %v\n", config.DefaultPath, err)
		cfg = config.Defaults()
	}
	return cfg.Admin.Listen, nil
}

// client connects to the daemon the flags name.
func (f *adminFlags) client(cmd *cobra.Command) (*admin.Client, error) {
	addr, err := f.addr(cmd.ErrOrStderr())
	if err != nil {
		return nil, err
	}
	token := ""
	if f.tokenFile != "" {
		data, err := os.ReadFile(f.tokenFile)
		if err != nil {
			return nil, usageError(fmt.Errorf("--token-file: %w", err))
		}
		line, _, _ := strings.Cut(string(data), "\n")
		token = strings.TrimSpace(line)
	}
	c, err := admin.NewClient(addr, token)
	if err != nil {
		return nil, usageError(err)
	}
	return c, nil
}

// failed is a refusal or failure of the daemon (or no daemon): exit 1 with
// its message, on one line.
func failed(err error) error {
	var ae *admin.APIError
	if errors.As(err, &ae) {
		return exitError{1, fmt.Errorf("%s (%s)", ae.Message, ae.Code)}
	}
	return exitError{1, err}
}

// call runs one API call with the flags' client and prints its result as
// JSON or with text.
func call[T any](cmd *cobra.Command, f *adminFlags, do func(context.Context, *admin.Client) (T, error), text func(io.Writer, T)) error {
	c, err := f.client(cmd)
	if err != nil {
		return err
	}
	res, err := do(cmd.Context(), c)
	if err != nil {
		return failed(err)
	}
	if f.json {
		return writeJSON(cmd.OutOrStdout(), res)
	}
	text(cmd.OutOrStdout(), res)
	return nil
}

func table(w io.Writer, rows [][]string) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	tw.Flush()
}

func localTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Format("2006-01-02 15:04:05 MST")
}

// exactArgs is cobra.ExactArgs with a usage exit code and names.
func exactArgs(names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != len(names) {
			return usageError(fmt.Errorf("%s wants %s, got %d arguments", cmd.CommandPath(), strings.Join(names, " "), len(args)))
		}
		return nil
	}
}
