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
	"sync"
	"testing"
	"time"

	events "github.com/relaycap/relaycap/notify"
)

// TestNotifyTest sends the test event to a real HTTP receiver that checks
// the signature, and prints its answer.
func TestNotifyTest(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "webhook.secret")
	if err := os.WriteFile(secret, []byte("hush-hush\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got []events.Event
	status := http.StatusAccepted
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := events.Verify([]byte("hush-hush"), r.Header.Get(events.SignatureHeader), body, time.Now(), time.Minute); err != nil {
			http.Error(w, "bad signature: "+err.Error(), http.StatusUnauthorized)
			return
		}
		var ev events.Event
		if err := json.Unmarshal(body, &ev); err != nil {
			http.Error(w, "bad json", http.StatusBadRequest)
			return
		}
		mu.Lock()
		got = append(got, ev)
		s := status
		mu.Unlock()
		w.WriteHeader(s)
		fmt.Fprintf(w, "thanks for %s", ev.ID)
	}))
	defer srv.Close()
	cfg := filepath.Join(dir, "relaycap.yaml")
	write := func(secretFile string) {
		body := fmt.Sprintf("notify: {webhook_url: %q, secret_file: %q}\n", srv.URL+"/hook", secretFile)
		if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(secret)

	out, errs, code := runCLI(t, "notify", "test", "--config", cfg)
	mu.Lock()
	n := len(got)
	var ev events.Event
	if n > 0 {
		ev = got[0]
	}
	mu.Unlock()
	if code != 0 || n != 1 || ev.Type != events.TypeTest || ev.ID == "" {
		t.Fatalf("exit %d, receiver got %d events (%+v)\n%s%s", code, n, ev, out, errs)
	}
	if !strings.Contains(out, "receiver answered 202 Accepted") || !strings.Contains(out, "thanks for "+ev.ID) {
		t.Fatalf("output lacks the answer:\n%s", out)
	}

	// A receiver that refuses is a failure, with its answer shown.
	mu.Lock()
	status = http.StatusInternalServerError
	mu.Unlock()
	out, errs, code = runCLI(t, "notify", "test", "--config", cfg)
	if code != 1 || !strings.Contains(out, "receiver answered 500") || !strings.Contains(errs, "not 2xx") {
		t.Fatalf("refusing receiver: exit %d\n%s%s", code, out, errs)
	}

	// A wrong secret: the receiver's check refuses it.
	other := filepath.Join(dir, "other.secret")
	os.WriteFile(other, []byte("not-it"), 0o600)
	write(other)
	out, errs, code = runCLI(t, "notify", "test", "--config", cfg)
	if code != 1 || !strings.Contains(out, "401") || !strings.Contains(out, "bad signature") {
		t.Fatalf("wrong secret: exit %d\n%s%s", code, out, errs)
	}

	// A secret others can read is refused before anything is sent.
	os.Chmod(secret, 0o644)
	write(secret)
	_, errs, code = runCLI(t, "notify", "test", "--config", cfg)
	if code != 2 || !strings.Contains(errs, "lets others read") {
		t.Fatalf("open secret: exit %d\n%s", code, errs)
	}

	// No webhook configured.
	os.WriteFile(cfg, []byte("{}\n"), 0o644)
	_, errs, code = runCLI(t, "notify", "test", "--config", cfg)
	if code != 2 || !strings.Contains(errs, "notify.webhook_url is not set") {
		t.Fatalf("no webhook: exit %d\n%s", code, errs)
	}
}
