package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relaycap/relaycap/idheader"
	events "github.com/relaycap/relaycap/notify"
)

// complaintFor is a bounce quoting a message relayed for account under
// queue id qid, its token sealed for that message.
func complaintFor(t *testing.T, keys, account, qid string) string {
	t.Helper()
	ring, err := idheader.LoadKeyring(keys)
	if err != nil {
		t.Fatal(err)
	}
	msgID := "<" + qid + "@spammer.example>"
	token, err := ring.Seal(idheader.Fields{Account: account, Time: time.Now().UTC().Truncate(time.Second),
		QueueID: qid, ClientAddr: "192.0.2.9", Recipients: 1}, msgID)
	if err != nil {
		t.Fatal(err)
	}
	return "From: abuse@victim.example\r\nSubject: spam\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n" +
		"Content-Type: message/rfc822\r\n\r\nX-Relay-ID: " + token + "\r\nMessage-ID: " + msgID + "\r\nSubject: buy\r\n\r\nbuy\r\n--b--\r\n"
}

// TestNthComplaintSuspends: with abuse.auto_suspend_after 3, the third
// `abuse report` within the window suspends the account through the
// running daemon, with "3 complaints" and the three queue ids in the audit
// trail, and the webhook receiver gets the suspension event. A resume
// starts the count afresh.
func TestNthComplaintSuspends(t *testing.T) {
	got := make(chan events.Event, 10)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := events.Verify([]byte("complaint-secret"), r.Header.Get(events.SignatureHeader), body, time.Now(), time.Minute); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		var ev events.Event
		if json.Unmarshal(body, &ev) != nil {
			http.Error(w, "bad json", http.StatusBadRequest)
			return
		}
		got <- ev
	}))
	defer hook.Close()
	secret := filepath.Join(t.TempDir(), "hook.secret")
	if err := os.WriteFile(secret, []byte("complaint-secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := startCLIDaemon(t, fmt.Sprintf("abuse: {auto_suspend_after: 3, window: 24h}\nnotify: {webhook_url: %q, secret_file: %q}\n", hook.URL, secret))
	c.run(t, "", "account", "set", "mallory@example.com", "--daily-limit", "100")

	for i, qid := range []string{"4AAA000001", "4AAA000002"} {
		out, e, code := c.run(t, complaintFor(t, c.keys, "mallory@example.com", qid), "abuse", "report", "-")
		wantRun(t, "complaint", out, e, code, 0, fmt.Sprintf("complaint against mallory@example.com recorded: %d within abuse.window, account active", i+1))
	}
	out, e, code := c.run(t, complaintFor(t, c.keys, "mallory@example.com", "4AAA000003"), "abuse", "report", "-")
	wantRun(t, "third complaint", out, e, code, 0, "complaint against mallory@example.com recorded: 3 complaints, now suspended")

	out, e, code = c.run(t, "", "account", "show", "mallory@example.com", "--json")
	wantRun(t, "show", out, e, code, 0, `"status": "suspended"`)
	var detail struct {
		Audit []struct {
			Action   string   `json:"action"`
			Reason   string   `json:"reason"`
			QueueIDs []string `json:"queue_ids"`
		} `json:"audit"`
	}
	if err := json.Unmarshal([]byte(out), &detail); err != nil || len(detail.Audit) == 0 {
		t.Fatalf("account show --json: %v\n%s", err, out)
	}
	last := detail.Audit[0]
	if last.Action != "suspend" || last.Reason != "3 complaints within 24h" ||
		strings.Join(last.QueueIDs, ",") != "4AAA000001,4AAA000002,4AAA000003" {
		t.Fatalf("newest audit entry: %+v", last)
	}

	select {
	case ev := <-got:
		if ev.Type != events.TypeStatus || ev.Account != "mallory@example.com" || ev.Status != "suspended" ||
			ev.Reason != "3 complaints within 24h" || len(ev.QueueIDs) != 3 || ev.Actor == "" {
			t.Fatalf("suspension event: %+v", ev)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no suspension event reached the receiver")
	}

	// An operator resumes it; the next complaint counts from there.
	out, e, code = c.run(t, "", "account", "resume", "mallory@example.com", "--reason", "customer cleaned up")
	wantRun(t, "resume", out, e, code, 0, "active")
	out, e, code = c.run(t, complaintFor(t, c.keys, "mallory@example.com", "4AAA000004"), "abuse", "report", "-")
	wantRun(t, "complaint after resume", out, e, code, 0, "recorded: 1 within abuse.window, account active")
}

// TestUsageShowsTheHourAndDryRun: `relaycap usage` prints the hour's count
// against the hourly limit and, in dry run, what would have been refused.
func TestUsageShowsTheHourAndDryRun(t *testing.T) {
	c := startCLIDaemon(t, "quota: {accounts: {dry@example.com: {daily_limit: 2, hourly_limit: 50, dry_run: true}}}\n")
	c.commit(t, "dry@example.com", 5)
	out, e, code := c.run(t, "", "usage", "dry@example.com")
	out = strings.Join(strings.Fields(out), " ")
	wantRun(t, "usage", out, e, code, 0, "used: 5", "limit: 2", "this hour: 5 of 50 (hourly limit)",
		"dry run: limits not enforced; 3 relays today would have been refused")
}
