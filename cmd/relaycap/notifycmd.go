package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/relaycap/relaycap/config"
	events "github.com/relaycap/relaycap/notify"
)

func newNotifyCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "notify",
		Short: "Customer event webhook",
		Args:  subcommandOnly,
		RunE:  func(cmd *cobra.Command, _ []string) error { return subcommandOnly(cmd, nil) },
	}
	var path string
	test := &cobra.Command{
		Use:   "test",
		Short: "Send a signed test event to notify.webhook_url and print the answer; exit 0 on 2xx",
		Long: `Send one signed event of type "test" straight to notify.webhook_url (not
through the daemon's outbox) and print the receiver's answer. Exit 0 when it
answers 2xx, 1 when it answers anything else or cannot be reached, 2 for a
config without a webhook.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(path, cmd.Flags())
			if err != nil {
				return exitError{2, err}
			}
			if cfg.Notify.WebhookURL == "" {
				return exitError{2, errors.New("notify.webhook_url is not set")}
			}
			secret, err := events.ReadSecret(cfg.Notify.SecretFile)
			if err != nil {
				return exitError{2, fmt.Errorf("notify.secret_file: %w", err)}
			}
			return sendTest(cmd, events.Webhook{URL: cfg.Notify.WebhookURL, Secret: secret}, time.Now())
		},
	}
	test.Flags().StringVarP(&path, "config", "c", "", "config file (default "+config.DefaultPath+" if it exists)")
	cmd.AddCommand(test)
	return cmd
}

func sendTest(cmd *cobra.Command, hook events.Webhook, now time.Time) error {
	ev := events.Event{ID: events.NewID(now), Type: events.TypeTest, Time: now.UTC()}
	ctx, cancel := context.WithTimeout(cmd.Context(), 15*time.Second)
	defer cancel()
	resp, err := hook.Post(ctx, ev, now)
	if err != nil {
		return exitError{1, err}
	}
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "event %s sent to %s\nreceiver answered %d %s\n", ev.ID, hook.URL, resp.Status, http.StatusText(resp.Status))
	if len(resp.Body) > 0 {
		fmt.Fprintf(out, "%s\n", resp.Body)
	}
	if !resp.OK() {
		return exitError{1, fmt.Errorf("the receiver answered %d, not 2xx", resp.Status)}
	}
	return nil
}
