//go:build e2e

package e2e_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relaycap/relaycap/test/e2e"
)

const idHeader = "X-Relay-ID"

// TestIDHeader (scenario 7): every delivered message carries exactly one
// X-Relay-ID, right below Postfix's own Received: line; `relaycap id
// decode` on the stored message names the account and the queue id Postfix
// logged; a header forged by the client never reaches the sink.
func TestIDHeader(t *testing.T) {
	sc := begin(t, true)
	const account = "stamp@example.com"

	if st, err := os.Stat(sb.KeysFile); err != nil {
		sc.errorf(t, "keys file: %v", err)
	} else if st.Mode().Perm() != 0o640 {
		sc.errorf(t, "relaycap id keygen made %s mode %v, want 0640", sb.KeysFile, st.Mode().Perm())
	}

	plain := as(account, sb.Listeners[1], rcpts("stamp", 2))
	forged := as(account, sb.Listeners[4], rcpts("stamp-forged", 1))
	forged.Headers = []string{idHeader + ": forged"}
	var ids []*e2e.SwaksResult
	for _, s := range []e2e.Send{plain, forged} {
		r := sc.send(t, s)
		if !r.Accepted() {
			sc.fatalf(t, "message not queued: %s", r.Summary())
		}
		ids = append(ids, r)
	}
	if !strings.Contains(ids[1].Transcript, idHeader+": forged") {
		sc.fatalf(t, "swaks did not send the forged header:\n%s", ids[1].Transcript)
	}
	sc.settle(t)

	dir := t.TempDir()
	for i, r := range ids {
		ms := sb.Sink.ByMessageID(r.MessageID)
		if len(ms) != 1 {
			sc.errorf(t, "sink holds %d copies of %s, want 1", len(ms), r.MessageID)
			continue
		}
		m := ms[0]
		hs := m.Headers()
		vals := m.Header(idHeader)
		switch {
		case len(vals) != 1:
			sc.errorf(t, "%s: %d %s headers, want exactly 1: %q", r.MessageID, len(vals), idHeader, vals)
		case vals[0] == "forged":
			sc.errorf(t, "%s: the client's forged %s reached the sink", r.MessageID, idHeader)
		}
		if len(hs) < 2 || !strings.EqualFold(hs[0][0], "Received") || !strings.Contains(hs[0][1], "relay.e2e.test") ||
			!strings.EqualFold(hs[1][0], idHeader) {
			sc.errorf(t, "%s: want Postfix's Received: then %s first; headers: %q", r.MessageID, idHeader, firstNames(hs, 4))
		}

		qids := sb.QueueIDs(r.MessageID)
		if len(qids) != 1 {
			sc.errorf(t, "maillog names %d queue ids for %s: %v", len(qids), r.MessageID, qids)
			continue
		}
		file := filepath.Join(dir, "msg"+itoa(i)+".eml")
		if err := os.WriteFile(file, m.Data, 0o644); err != nil {
			sc.fatalf(t, "%v", err)
		}
		out, err := exec.Command(sb.Relaycap.Bin, "id", "decode", "--keys-file", sb.KeysFile, "--message", file).CombinedOutput()
		if err != nil {
			sc.errorf(t, "relaycap id decode %s: %v\n%s", file, err, out)
			continue
		}
		if !strings.Contains(string(out), account) || !strings.Contains(string(out), qids[0]) {
			sc.errorf(t, "relaycap id decode does not name %s and queue id %s:\n%s", account, qids[0], out)
		}
		t.Logf("decoded %s of %s:\n%s", idHeader, r.MessageID, out)
	}

	// Every message relaycap let through so far (all scenarios) is stamped once.
	for _, m := range sb.Sink.Messages() {
		if m.From == "" || m.From == "plain@example.com" || m.Data == nil {
			continue
		}
		if n := len(m.Header(idHeader)); n != 1 {
			sc.errorf(t, "message %s from %s carries %d %s headers, want 1", m.MessageID(), m.From, n, idHeader)
		}
	}
}

func firstNames(hs [][2]string, n int) []string {
	var out []string
	for i := 0; i < len(hs) && i < n; i++ {
		out = append(out, hs[i][0])
	}
	return out
}
