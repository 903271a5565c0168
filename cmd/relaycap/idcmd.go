package main

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/relaycap/relaycap/config"
	"github.com/relaycap/relaycap/idheader"
)

// newIDCommand returns "relaycap id": keygen and decode. Errors carry their
// exit code (exitError, main.go): 2 for usage, an unreadable keys file or
// message; 1 when a token does not open or none is found.
func newIDCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "id",
		Short: "Create or rotate identification keys; decode identification headers",
		Args:  subcommandOnly,
		RunE:  func(cmd *cobra.Command, _ []string) error { return subcommandOnly(cmd, nil) },
	}
	cmd.AddCommand(newIDKeygenCommand(), newIDDecodeCommand())
	return cmd
}

func newIDKeygenCommand() *cobra.Command {
	var keysFile string
	cmd := &cobra.Command{
		Use:   "keygen",
		Short: "Create the keys file, or rotate it: a new sealing key goes first, old keys stay",
		Long: `Create the keys file (mode 0640) with one new key, or, if it exists, add a new
key in front of the others. The first key seals new headers; all keys open, so
headers sealed before the rotation can still be decoded. The file is replaced
atomically and keeps its mode, owner and group. Reload the daemon afterwards.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			k, err := idheader.Keygen(keysFile, nil)
			if err != nil {
				return exitError{1, err}
			}
			out := cmd.OutOrStdout()
			switch k.Outcome {
			case idheader.Rotated:
				fmt.Fprintf(out, "rotated %s: new sealing key id %s; older keys still open old headers\n", keysFile, k.ID)
			case idheader.Filled:
				fmt.Fprintf(out, "wrote key id %s into %s, which held no key\n", k.ID, keysFile)
			case idheader.Created:
				fmt.Fprintf(out, "created %s (mode 0640) with key id %s\n", keysFile, k.ID)
				if hint := groupHint(keysFile); hint != "" {
					fmt.Fprintln(out, hint)
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&keysFile, "keys-file", config.Defaults().IDHeader.KeysFile, "identification keys file")
	return cmd
}

// daemonGroup is the group the packaged daemon runs in (sysusers.d);
// tests point it elsewhere.
var daemonGroup = "relaycap"

// groupHint says how to let the daemon read a new keys file: only on a host
// where the daemon's group exists and does not own the file yet. A
// developer's ./relaycap-data has no such group, and no use for the hint.
func groupHint(path string) string {
	g, err := user.LookupGroup(daemonGroup)
	if err != nil {
		return ""
	}
	fi, err := os.Stat(path)
	if err != nil {
		return ""
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && strconv.FormatUint(uint64(st.Gid), 10) == g.Gid {
		return ""
	}
	return fmt.Sprintf("give the daemon read access: chgrp %s %s", daemonGroup, path)
}

// daemonConfig is the config `id decode` reads when not given one; tests
// point it elsewhere.
var daemonConfig = config.DefaultPath

type decodeOptions struct {
	keysFile, timezone, message, header, config string
	json                                        bool
}

// fromConfig fills the flags not given on the command line from the
// daemon's config, so that on the relay itself a bare
// "relaycap id decode --message complaint.eml" uses the daemon's keys, zone
// and header name.
func (o *decodeOptions) fromConfig(cmd *cobra.Command) error {
	f := cmd.Flags()
	if f.Changed("keys-file") && f.Changed("timezone") && f.Changed("header") {
		return nil // nothing to take from a config
	}
	path, implicit := o.config, o.config == ""
	if implicit {
		path = daemonConfig
		if _, err := os.Stat(path); err != nil {
			return nil
		}
	}
	cfg, err := config.Load(path, nil)
	if err != nil {
		if implicit {
			// The abuse desk may not be able to read the daemon's config, or
			// it may be broken: that must not stop a decode; the flags'
			// defaults apply.
			fmt.Fprintf(cmd.ErrOrStderr(), "relaycap: not using %s: %v\n", path, err)
			return nil
		}
		return usageError(err)
	}
	if !f.Changed("keys-file") {
		o.keysFile = cfg.IDHeader.KeysFile
	}
	if !f.Changed("timezone") {
		o.timezone = cfg.Quota.Timezone
	}
	if !f.Changed("header") {
		o.header = cfg.IDHeader.Name
	}
	return nil
}

func newIDDecodeCommand() *cobra.Command {
	var o decodeOptions
	cmd := &cobra.Command{
		Use:   "decode {TOKEN | --message FILE}",
		Short: "Decode an identification header, or find and decode it in a complaint message",
		Long: `Decode a token (the header's value; a pasted "X-Relay-ID: …" line works too)
into the account, time, Postfix queue id, client address and recipient count.
With --message, search a whole message (FILE, or - for stdin): its header,
forwarded messages (message/rfc822) and ARF reports, and say whether each
token was sealed for the message it was found in.
Exit status: 0 a token opened; 1 a token is malformed, forged, tampered with,
from an unknown key, or none was found; 2 usage or keys-file errors.`,
		Args: func(cmd *cobra.Command, args []string) error {
			switch {
			case o.message != "" && len(args) > 0:
				return usageError(errors.New("give a TOKEN or --message, not both"))
			case o.message == "" && len(args) != 1:
				return usageError(fmt.Errorf("want one TOKEN (or --message FILE), got %d arguments", len(args)))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.fromConfig(cmd); err != nil {
				return err
			}
			loc, err := time.LoadLocation(o.timezone)
			if err != nil {
				return usageError(fmt.Errorf("--timezone: %w", err))
			}
			ring, err := idheader.LoadKeyring(o.keysFile)
			if err != nil {
				return usageError(err)
			}
			if o.message == "" {
				return decodeToken(cmd.OutOrStdout(), ring, args[0], loc, o.json)
			}
			msg, name, err := openMessage(cmd.InOrStdin(), o.message)
			if err != nil {
				return usageError(err)
			}
			defer msg.Close()
			return decodeMessage(cmd.OutOrStdout(), msg, name, ring, o, loc)
		},
	}
	// The flags' defaults are the daemon's: the config's defaults table.
	def := config.Defaults()
	f := cmd.Flags()
	f.StringVar(&o.keysFile, "keys-file", def.IDHeader.KeysFile, "identification keys file")
	f.StringVar(&o.timezone, "timezone", def.Quota.Timezone, "also show the time in this zone")
	f.StringVarP(&o.config, "config", "c", "", "take --keys-file, --timezone and --header from this config file (default "+config.DefaultPath+" if it exists)")
	f.BoolVar(&o.json, "json", false, "print JSON")
	f.StringVar(&o.message, "message", "", "search this message file (- for stdin) for the header")
	f.StringVar(&o.header, "header", def.IDHeader.Name, "header name to search for with --message")
	return cmd
}

// noArgs is cobra.NoArgs with a usage exit code.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageError(fmt.Errorf("%s takes no arguments, got %q", cmd.CommandPath(), args))
	}
	return nil
}

// decoded is what a token says, for text and JSON output.
type decoded struct {
	Account       string `json:"account"`
	Time          string `json:"time"`       // RFC 3339, UTC
	TimeLocal     string `json:"time_local"` // RFC 3339, in --timezone
	TimeZone      string `json:"timezone"`
	QueueID       string `json:"queue_id"`
	ClientAddr    string `json:"client_addr"`
	Recipients    int    `json:"recipients"`
	KeyID         string `json:"key_id"`
	MessageIDHash string `json:"message_id_hash"`
}

func newDecoded(f idheader.Fields, loc *time.Location) *decoded {
	return &decoded{
		Account:       f.Account,
		Time:          f.Time.UTC().Format(time.RFC3339),
		TimeLocal:     f.Time.In(loc).Format(time.RFC3339),
		TimeZone:      loc.String(),
		QueueID:       f.QueueID,
		ClientAddr:    f.ClientAddr,
		Recipients:    f.Recipients,
		KeyID:         f.KeyID,
		MessageIDHash: hex.EncodeToString(f.MessageIDHash),
	}
}

func (d *decoded) print(w io.Writer, f idheader.Fields, loc *time.Location) {
	const layout = "2006-01-02 15:04:05 MST"
	fmt.Fprintf(w, "account:     %s\n", d.Account)
	fmt.Fprintf(w, "time:        %s\n", f.Time.UTC().Format(layout))
	if local := f.Time.In(loc); local.Format("MST") != "UTC" {
		fmt.Fprintf(w, "             %s (%s)\n", local.Format(layout), loc)
	}
	fmt.Fprintf(w, "queue id:    %s\n", d.QueueID)
	fmt.Fprintf(w, "client:      %s\n", d.ClientAddr)
	fmt.Fprintf(w, "recipients:  %d\n", d.Recipients)
	fmt.Fprintf(w, "key id:      %s\n", d.KeyID)
}

// tokenArg accepts a pasted header line, folded or not, as well as a bare
// token: base64url has no colon and no white space.
func tokenArg(s string) string {
	if i := strings.LastIndexByte(s, ':'); i >= 0 {
		s = s[i+1:]
	}
	return strings.Join(strings.Fields(s), "")
}

func decodeToken(w io.Writer, ring *idheader.Keyring, token string, loc *time.Location, asJSON bool) error {
	f, err := ring.Open(tokenArg(token))
	if err != nil {
		return exitError{1, err}
	}
	d := newDecoded(f, loc)
	if asJSON {
		return writeJSON(w, d)
	}
	d.print(w, f, loc)
	return nil
}

// foundToken is one header found by --message, opened or not.
type foundToken struct {
	Nested           bool   `json:"nested"`
	MessageID        string `json:"message_id"`
	MessageIDMatches *bool  `json:"message_id_matches,omitempty"`
	Error            string `json:"error,omitempty"`
	*decoded
}

// openMessage opens the --message argument: a file, or stdin for "-". name
// says which, for messages.
func openMessage(stdin io.Reader, arg string) (r io.ReadCloser, name string, err error) {
	if arg == "-" {
		return io.NopCloser(stdin), "standard input", nil
	}
	f, err := os.Open(arg)
	if err != nil {
		return nil, "", err
	}
	return f, arg, nil
}

// decodeMessage finds every token in the message r (named name) and
// prints each, opened or not, to w.
func decodeMessage(w io.Writer, r io.Reader, name string, ring *idheader.Keyring, o decodeOptions, loc *time.Location) error {
	found, err := idheader.FindToken(r, o.header)
	if err != nil {
		return exitError{1, err}
	}
	if len(found) == 0 {
		return exitError{1, fmt.Errorf("no %s header in %s", o.header, name)}
	}
	var results []foundToken
	var firstErr error
	for i, fd := range found {
		res := foundToken{Nested: fd.Nested, MessageID: fd.MessageID}
		f, err := ring.Open(fd.Token)
		if err != nil {
			res.Error = err.Error()
			if firstErr == nil {
				firstErr = err
			}
		} else {
			matches := f.BindsMessageID(fd.MessageID)
			res.decoded, res.MessageIDMatches = newDecoded(f, loc), &matches
		}
		results = append(results, res)
		if !o.json {
			printFound(w, i, len(found), res, f, loc)
		}
	}
	if o.json {
		if err := writeJSON(w, results); err != nil {
			return err
		}
	}
	for _, res := range results {
		if res.decoded != nil {
			return nil
		}
	}
	return exitError{1, fmt.Errorf("no %s header opened: %w", o.header, firstErr)}
}

func printFound(w io.Writer, i, n int, res foundToken, f idheader.Fields, loc *time.Location) {
	where := "the message's own header"
	if res.Nested {
		where = "a forwarded or reported message"
	}
	if i > 0 {
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "header %d of %d, in %s\n", i+1, n, where)
	if res.decoded == nil {
		fmt.Fprintf(w, "does not open: %s\n", res.Error)
		return
	}
	res.print(w, f, loc)
	if *res.MessageIDMatches {
		fmt.Fprintf(w, "message-id:  %s (matches: sealed for this message)\n", res.MessageID)
	} else {
		fmt.Fprintf(w, "message-id:  %s (DOES NOT MATCH: sealed for another message; the header was copied)\n", res.MessageID)
	}
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false) // Message-IDs have angle brackets
	return enc.Encode(v)
}
