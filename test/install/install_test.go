//go:build e2e && install

package install

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/relaycap/relaycap/test/e2e"
)

// DebEnv names the .deb under test (make package-check sets it).
const DebEnv = "RELAYCAP_DEB"

const (
	unitPath   = "/lib/systemd/system/relaycap.service"
	confPath   = "/etc/relaycap/relaycap.yaml"
	keysPath   = "/etc/relaycap/id.keys"
	sockDir    = "/var/spool/postfix/relaycap"
	examples   = "/usr/share/doc/relaycap/examples"
	postfixPID = "/var/spool/postfix/pid/master.pid"
)

// The accounts the local edit of the conffile adds: one per listener, so
// each message's count is one.
var accounts = map[int]string{2525: "pkg2525@example.com", 465: "pkg465@example.com"}

// TestInstall drives the .deb through its life on this machine: install,
// the daemon started as its unit starts it, a message through Debian's
// own Postfix and Dovecot on 2525 and 465, a reinstall over a local edit,
// purge. Every file it changes outside the package is restored, every
// process it starts is stopped by its PID.
func TestInstall(t *testing.T) {
	deb := os.Getenv(DebEnv)
	if deb == "" {
		t.Fatalf("%s names no .deb (run make package-check)", DebEnv)
	}
	preflight(t)
	// Not t.TempDir: its parent is 0700, and relaycap, postfix and dovecot
	// reach files in this one.
	tmp, err := os.MkdirTemp("", "relaycap-install-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(tmp) })
	if err := os.Chmod(tmp, 0o755); err != nil {
		t.Fatal(err)
	}

	// Cleanups run last-registered first: processes, then Postfix's and
	// Dovecot's files, then the package, then the user databases.
	users := snapshot(t, "/etc/passwd", "/etc/group", "/etc/shadow", "/etc/gshadow",
		"/etc/passwd-", "/etc/group-", "/etc/shadow-", "/etc/gshadow-")
	t.Cleanup(func() { users.restore(t) })
	t.Cleanup(func() {
		if exec.Command("dpkg", "-s", "relaycap").Run() == nil {
			t.Log(run(t, "dpkg", "--purge", "relaycap"))
		}
	})
	pfConf := snapshot(t, "/etc/postfix", "/etc/dovecot")
	t.Cleanup(func() { pfConf.restore(t) })
	procs := &processes{}
	t.Cleanup(func() { procs.stop(t) })

	step(t, "dpkg -i creates user, group, socket folder, keys", func(t *testing.T) {
		t.Log(run(t, "dpkg", "-i", deb))
		checkInstalled(t)
	})
	step(t, "systemd-analyze verify and security", func(t *testing.T) {
		// CI has no systemd as PID 1; both work on the unit file offline.
		t.Log(run(t, "systemd-analyze", "verify", unitPath))
		out := run(t, "systemd-analyze", "security", "--offline=yes", unitPath)
		m := regexp.MustCompile(`Overall exposure level for relaycap.service: ([0-9.]+) (\w+)`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("no exposure level in:\n%s", out)
		}
		if score, _ := strconv.ParseFloat(m[1], 64); score > 2.0 {
			t.Errorf("exposure %s %s, want at most 2.0:\n%s", m[1], m[2], out)
		}
		t.Logf("systemd-analyze security --offline=yes: %s %s", m[1], m[2])
	})
	step(t, "relaycap config check passes on the shipped config", func(t *testing.T) {
		t.Log(run(t, "relaycap", "config", "check"))
		t.Log(run(t, "setpriv", "--reuid=relaycap", "--regid=relaycap", "--init-groups", "--",
			"relaycap", "config", "check", "--config", confPath))
	})

	edited := editConfig(t)
	unit := parseUnit(t, unitPath)
	var daemonLog string
	step(t, "the daemon, started as ExecStart does, listens on the shipped sockets", func(t *testing.T) {
		daemonLog = startDaemon(t, procs, unit, tmp)
		checkSocket(t, filepath.Join(sockDir, "milter.sock"))
		checkSocket(t, filepath.Join(sockDir, "policy.sock"))
		checkSocket(t, "/run/relaycap/admin.sock")
	})

	step(t, "Debian's Postfix and Dovecot relay through it on 2525 and 465", func(t *testing.T) {
		sink, err := e2e.StartSink("127.0.0.1:0", true)
		if err != nil {
			t.Fatal(err)
		}
		defer sink.Close()
		startDovecot(t, procs, tmp)
		startPostfix(t, procs, tmp, sink.Port())
		for _, port := range []int{2525, 465} {
			relayOne(t, sink, port, daemonLog)
		}
	})
	procs.stop(t)
	pfConf.restore(t)
	pfConf.verify(t)

	step(t, "dpkg -i again keeps the local edit and the keys", func(t *testing.T) {
		keys := readFile(t, keysPath)
		t.Log(run(t, "dpkg", "-i", deb))
		if got := readFile(t, confPath); got != edited {
			t.Errorf("reinstall changed the edited %s:\n%s", confPath, got)
		}
		if readFile(t, keysPath) != keys {
			t.Errorf("reinstall rewrote %s", keysPath)
		}
	})

	step(t, "dpkg -r keeps the config, the keys and the state", func(t *testing.T) {
		t.Log(run(t, "dpkg", "-r", "relaycap"))
		if _, err := os.Stat("/usr/bin/relaycap"); err == nil {
			t.Errorf("/usr/bin/relaycap is still there after dpkg -r")
		}
		for _, p := range []string{confPath, keysPath, "/var/lib/relaycap", sockDir} {
			if _, err := os.Stat(p); err != nil {
				t.Errorf("dpkg -r removed %s: %v", p, err)
			}
		}
	})

	step(t, "dpkg --purge removes what it should and nothing else", func(t *testing.T) {
		t.Log(run(t, "dpkg", "--purge", "relaycap"))
		for _, p := range []string{"/usr/bin/relaycap", "/etc/relaycap", "/var/lib/relaycap", sockDir, "/run/relaycap",
			unitPath, "/usr/share/doc/relaycap", "/usr/lib/sysusers.d/relaycap.conf", "/usr/lib/tmpfiles.d/relaycap.conf"} {
			if _, err := os.Lstat(p); err == nil {
				t.Errorf("%s is still there after purge", p)
			}
		}
		// Kept on purpose: the system user (Debian keeps system users),
		// Postfix's spool and config, the postfix user.
		for _, name := range []string{"relaycap", "postfix"} {
			if _, err := user.Lookup(name); err != nil {
				t.Errorf("user %s: %v", name, err)
			}
		}
		for _, p := range []string{"/var/spool/postfix/private", "/var/spool/postfix/pid", "/etc/postfix/main.cf"} {
			if _, err := os.Stat(p); err != nil {
				t.Errorf("purge removed %s: %v", p, err)
			}
		}
		pfConf.verify(t)
	})
}

// preflight refuses to run where it would disturb the machine: relaycap
// installed, or the system's Postfix or Dovecot running.
func preflight(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("the install test needs root (dpkg -i)")
	}
	if exec.Command("dpkg", "-s", "relaycap").Run() == nil {
		t.Fatal("relaycap is already installed; dpkg --purge relaycap first")
	}
	if _, err := user.Lookup("relaycap"); err == nil {
		t.Fatal("user relaycap exists already; the test checks that the package creates it")
	}
	if pid := readPID(postfixPID); alive(pid) {
		t.Fatalf("the system Postfix is running (pid %d); the test needs it stopped", pid)
	}
	if pid := readPID("/run/dovecot/master.pid"); alive(pid) {
		t.Fatalf("the system Dovecot is running (pid %d); the test needs it stopped", pid)
	}
	for _, tool := range []string{"dpkg", "setpriv", "systemd-analyze", "postfix", "postconf", "dovecot", "swaks"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s: %v (make e2e-deps package-deps)", tool, err)
		}
	}
}

func checkInstalled(t *testing.T) {
	u, err := user.Lookup("relaycap")
	if err != nil {
		t.Fatalf("no user relaycap: %v", err)
	}
	if uid, _ := strconv.Atoi(u.Uid); uid >= 1000 || u.HomeDir != "/var/lib/relaycap" {
		t.Errorf("user relaycap: uid %s home %s, want a system uid and /var/lib/relaycap", u.Uid, u.HomeDir)
	}
	if pw := run(t, "getent", "passwd", "relaycap"); !strings.HasSuffix(strings.TrimSpace(pw), ":/usr/sbin/nologin") {
		t.Errorf("relaycap's shell: %s", pw)
	}
	if _, err := user.LookupGroup("relaycap"); err != nil {
		t.Errorf("no group relaycap: %v", err)
	}
	if groups := strings.Fields(run(t, "id", "-nG", "postfix")); !contains(groups, "relaycap") {
		t.Errorf("postfix is not in group relaycap: %v", groups)
	}
	wantOwner(t, sockDir, "relaycap", "relaycap", os.ModeDir|0o750)
	wantOwner(t, keysPath, "root", "relaycap", 0o640)
	if st, err := os.Stat(keysPath); err == nil && st.Size() == 0 {
		t.Errorf("%s is empty: postinst's keygen did not fill it", keysPath)
	}
	if cf := run(t, "dpkg-query", "-W", "-f=${Conffiles}", "relaycap"); !strings.Contains(cf, confPath) {
		t.Errorf("%s is not a conffile: %q", confPath, cf)
	}
	if files := run(t, "dpkg", "-L", "relaycap"); strings.Contains(files, "/var/lib/relaycap") {
		t.Errorf("the package ships /var/lib/relaycap (StateDirectory= makes it)")
	}
	for _, p := range []string{"/usr/share/man/man8/relaycap-serve.8.gz", "/usr/share/man/man1/relaycap.1.gz",
		"/usr/share/bash-completion/completions/relaycap", examples + "/postfix-master.cf", examples + "/dovecot-auth.conf"} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("not installed: %v", err)
		}
	}
	if v := run(t, "relaycap", "version"); !regexp.MustCompile(`^relaycap \S+ \(commit [0-9a-f]{7,}\)\n$`).MatchString(v) {
		t.Errorf("relaycap version: %q, want version and commit", v)
	}
}

// editConfig is the admin's local edit: two accounts in the conffile.
func editConfig(t *testing.T) string {
	t.Helper()
	conf := readFile(t, confPath)
	add := fmt.Sprintf("accounts:\n    %s: 10\n    %s: 10\n", accounts[2525], accounts[465])
	if !strings.Contains(conf, "  accounts: {}\n") {
		t.Fatalf("%s has no \"accounts: {}\" line to edit", confPath)
	}
	conf = strings.Replace(conf, "  accounts: {}\n", "  "+add, 1)
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, "relaycap", "config", "check")
	return conf
}

// unit is what the test needs from the installed unit file.
type unit struct {
	execStart, user, group, umask string
	dirs                          map[string]string // folder → mode, from StateDirectory= and RuntimeDirectory=
}

func parseUnit(t *testing.T, path string) unit {
	t.Helper()
	kv := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(readFile(t, path)))
	for sc.Scan() {
		if k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), "="); ok && !strings.HasPrefix(k, "#") {
			kv[k] = v // the last assignment wins, as in systemd
		}
	}
	u := unit{execStart: kv["ExecStart"], user: kv["User"], group: kv["Group"], umask: kv["UMask"], dirs: map[string]string{}}
	if u.execStart == "" || u.user == "" || u.group == "" || u.umask == "" {
		t.Fatalf("%s lacks ExecStart=, User=, Group= or UMask=: %v", path, kv)
	}
	u.dirs["/var/lib/"+kv["StateDirectory"]] = kv["StateDirectoryMode"]
	u.dirs["/run/"+kv["RuntimeDirectory"]] = kv["RuntimeDirectoryMode"]
	return u
}

// startDaemon does what systemd does for the unit: create its
// StateDirectory= and RuntimeDirectory= (CI has no systemd as PID 1), run
// ExecStart as User:Group with UMask and a NOTIFY_SOCKET, and wait for
// READY=1. It returns the daemon's log file.
func startDaemon(t *testing.T, procs *processes, u unit, tmp string) string {
	t.Helper()
	for dir, mode := range u.dirs {
		run(t, "install", "-d", "-o", u.user, "-g", u.group, "-m", mode, dir)
	}
	notifyPath := filepath.Join(tmp, "notify.sock")
	nc, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notifyPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	os.Chmod(notifyPath, 0o777)
	logPath := filepath.Join(tmp, "relaycap.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command("setpriv", "--reuid="+u.user, "--regid="+u.group, "--init-groups", "--",
		"/bin/sh", "-c", "umask "+u.umask+" && exec "+u.execStart)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "NOTIFY_SOCKET=" + notifyPath}
	cmd.Stdout, cmd.Stderr = logf, logf
	procs.start(t, "relaycap", cmd)
	nc.SetReadDeadline(time.Now().Add(30 * time.Second))
	buf := make([]byte, 4096)
	for {
		n, err := nc.Read(buf)
		if err != nil {
			t.Fatalf("no READY=1 from the daemon: %v\n%s", err, readFile(t, logPath))
		}
		if strings.Contains(string(buf[:n]), "READY=1") {
			return logPath
		}
	}
}

// checkSocket: a socket of user and group relaycap, mode 0660.
func checkSocket(t *testing.T, path string) {
	t.Helper()
	wantOwner(t, path, "relaycap", "relaycap", os.ModeSocket|0o660)
}

func startDovecot(t *testing.T, procs *processes, tmp string) {
	t.Helper()
	// The shipped snippet as the README says, plus a passdb for the test
	// logins (Debian's PAM passdb stays in front; it does not know them).
	copyFile(t, examples+"/dovecot-auth.conf", "/etc/dovecot/conf.d/99-relaycap-auth.conf")
	users := filepath.Join(tmp, "dovecot-users")
	var b strings.Builder
	for _, a := range accounts {
		fmt.Fprintf(&b, "%s:{PLAIN}pw-%s\n", a, a)
	}
	writeFile(t, users, b.String(), 0o644)
	writeFile(t, "/etc/dovecot/conf.d/99-relaycap-test-passdb.conf",
		"passdb {\n  driver = passwd-file\n  args = scheme=PLAIN username_format=%u "+users+"\n}\n", 0o644)
	cmd := exec.Command("dovecot", "-F")
	out, err := os.Create(filepath.Join(tmp, "dovecot.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	procs.start(t, "dovecot", cmd)
	waitFor(t, "Dovecot's auth socket", func() error {
		c, err := net.Dial("unix", "/var/spool/postfix/private/auth")
		if err == nil {
			c.Close()
		}
		return err
	})
}

// startPostfix configures the system Postfix from `relaycap postfix-config
// --postconf` (the shipped snippets), loopback only, relaying to the sink,
// and starts it.
func startPostfix(t *testing.T, procs *processes, tmp string, sinkPort int) {
	t.Helper()
	script := run(t, "relaycap", "postfix-config", "--postconf")
	t.Logf("relaycap postfix-config --postconf:\n%s", script)
	run(t, "sh", "-ec", script)
	maillog := filepath.Join(tmp, "maillog")
	writeFile(t, maillog, "", 0o644)
	chownName(t, maillog, "postfix", "postfix")
	for _, kv := range []string{
		"inet_interfaces = loopback-only", "inet_protocols = ipv4",
		fmt.Sprintf("relayhost = [127.0.0.1]:%d", sinkPort), "smtp_tls_security_level = none",
		"maillog_file = " + maillog, "maillog_file_prefixes = /var, " + tmp,
	} {
		run(t, "postconf", "-e", kv)
	}
	run(t, "postfix", "check")
	procs.postfix = true
	run(t, "postfix", "start")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("maillog:\n%s", tail(readFileQuiet(maillog), 40))
		}
	})
	waitFor(t, "Postfix's listeners", func() error {
		for _, p := range []int{25, 2525, 10025, 465, 10465} {
			c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", p))
			if err != nil {
				return err
			}
			c.Close()
		}
		return nil
	})
}

// relayOne sends one message to one recipient through a listener and
// checks that it reached the sink with the identification header naming
// the account and one recipient, and that the daemon counted one relay.
func relayOne(t *testing.T, sink *e2e.Sink, port int, daemonLog string) {
	t.Helper()
	account := accounts[port]
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, err := e2e.Swaks(ctx, e2e.Send{
		Listener: e2e.Listener{Name: "system", Role: port, Port: port, ImplicitTLS: port == 465},
		Auth:     "PLAIN", User: account, Password: "pw-" + account,
		From: account, To: []string{fmt.Sprintf("friend-%d@remote.example", port)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !r.Accepted() {
		t.Fatalf("port %d: not queued: %s\n%s", port, r.Summary(), r.Transcript)
	}
	var msg e2e.Message
	waitFor(t, "the message at the sink", func() error {
		ms := sink.ByMessageID(r.MessageID)
		if len(ms) != 1 {
			return fmt.Errorf("%d copies of %s", len(ms), r.MessageID)
		}
		msg = ms[0]
		return nil
	})
	hdr := msg.Header("X-Relay-ID")
	if len(hdr) != 1 {
		t.Fatalf("port %d: %d X-Relay-ID headers, want 1", port, len(hdr))
	}
	var dec struct {
		Account    string `json:"account"`
		Recipients int    `json:"recipients"`
		QueueID    string `json:"queue_id"`
	}
	if err := json.Unmarshal([]byte(run(t, "relaycap", "id", "decode", "--keys-file", keysPath, "--json", strings.TrimSpace(hdr[0]))), &dec); err != nil {
		t.Fatal(err)
	}
	if dec.Account != account || dec.Recipients != 1 || dec.QueueID != r.QueueID() {
		t.Errorf("port %d: header says %+v, want account %s, 1 recipient, queue id %s", port, dec, account, r.QueueID())
	}
	var d e2e.Decision
	waitFor(t, "the decision line", func() error {
		ds := e2e.ParseDecisions(readFileQuiet(daemonLog), account)
		if len(ds) != 1 {
			return fmt.Errorf("%d decision lines for %s", len(ds), account)
		}
		d = ds[0]
		return nil
	})
	if d.Accepted != 1 || d.Used != 1 || d.Limit != 10 || d.Result != "accept" {
		t.Errorf("port %d: decision %s, want accepted=1 used=1 limit=10", port, d.Line)
	}
	t.Logf("port %d: %s; relaycap: %s", port, r.Summary(), d.Line)
}

// processes are the daemons the test started, stopped by PID.
type processes struct {
	cmds    []*exec.Cmd
	names   []string
	postfix bool // `postfix start` ran: stop it by its master's PID
}

func (p *processes) start(t *testing.T, name string, cmd *exec.Cmd) {
	t.Helper()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	p.cmds, p.names = append(p.cmds, cmd), append(p.names, name)
}

func (p *processes) stop(t *testing.T) {
	if p.postfix {
		pid := readPID(postfixPID)
		if out, err := exec.Command("postfix", "stop").CombinedOutput(); err != nil {
			t.Errorf("postfix stop: %v\n%s", err, out)
		}
		for i := 0; i < 300 && alive(pid); i++ {
			time.Sleep(50 * time.Millisecond)
		}
		if alive(pid) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Errorf("postfix master %d survived postfix stop; killed", pid)
		}
		p.postfix = false
	}
	for i := len(p.cmds) - 1; i >= 0; i-- {
		cmd := p.cmds[i]
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-done
			t.Errorf("%s ignored SIGTERM; killed", p.names[i])
		}
		// Its children (Dovecot's) are in its process group.
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	p.cmds, p.names = nil, nil
}

// files is a snapshot of files and folders, to put back exactly.
type files struct {
	roots []string
	state map[string]fileState
}

type fileState struct {
	mode     os.FileMode
	uid, gid uint32
	data     []byte
	link     string
}

func snapshot(t *testing.T, roots ...string) *files {
	t.Helper()
	f := &files{roots: roots, state: scan(t, roots)}
	return f
}

func scan(t *testing.T, roots []string) map[string]fileState {
	t.Helper()
	m := map[string]fileState{}
	for _, root := range roots {
		filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
			if err != nil {
				return nil // a root that does not exist
			}
			st := info.Sys().(*syscall.Stat_t)
			fs := fileState{mode: info.Mode(), uid: st.Uid, gid: st.Gid}
			switch {
			case info.Mode()&os.ModeSymlink != 0:
				fs.link, _ = os.Readlink(p)
			case info.Mode().IsRegular():
				fs.data, err = os.ReadFile(p)
				if err != nil {
					t.Fatalf("snapshot %s: %v", p, err)
				}
			}
			m[p] = fs
			return nil
		})
	}
	return m
}

// restore removes what was added, and writes back what changed.
func (f *files) restore(t *testing.T) {
	now := scan(t, f.roots)
	for p := range now {
		if _, ok := f.state[p]; !ok {
			os.RemoveAll(p)
		}
	}
	for p, want := range f.state {
		got, ok := now[p]
		if ok && sameFile(got, want) {
			continue
		}
		switch {
		case want.mode.IsDir():
			os.MkdirAll(p, want.mode.Perm())
		case want.link != "":
			os.Remove(p)
			os.Symlink(want.link, p)
		default:
			os.WriteFile(p, want.data, want.mode.Perm())
		}
		os.Lchown(p, int(want.uid), int(want.gid))
		if want.link == "" {
			os.Chmod(p, want.mode.Perm())
		}
	}
}

// verify fails the test unless the files are as snapshotted.
func (f *files) verify(t *testing.T) {
	t.Helper()
	now := scan(t, f.roots)
	for p, want := range f.state {
		if got, ok := now[p]; !ok || !sameFile(got, want) {
			t.Errorf("%s differs from before the test", p)
		}
	}
	for p := range now {
		if _, ok := f.state[p]; !ok {
			t.Errorf("%s was not there before the test", p)
		}
	}
}

func sameFile(a, b fileState) bool {
	return a.mode == b.mode && a.uid == b.uid && a.gid == b.gid && a.link == b.link && bytes.Equal(a.data, b.data)
}

// step runs one stage; a failed stage ends the test, as the next ones
// build on it.
func step(t *testing.T, name string, fn func(t *testing.T)) {
	t.Helper()
	if !t.Run(name, fn) {
		t.FailNow()
	}
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND=noninteractive")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out.String(), errb.String())
	}
	return out.String()
}

func wantOwner(t *testing.T, path, owner, group string, mode os.FileMode) {
	t.Helper()
	st, err := os.Lstat(path)
	if err != nil {
		t.Errorf("%v", err)
		return
	}
	sys := st.Sys().(*syscall.Stat_t)
	u, _ := user.LookupId(strconv.Itoa(int(sys.Uid)))
	g, _ := user.LookupGroupId(strconv.Itoa(int(sys.Gid)))
	if u == nil || g == nil || u.Username != owner || g.Name != group || st.Mode() != mode {
		t.Errorf("%s: %v uid %d gid %d, want %v %s:%s", path, st.Mode(), sys.Uid, sys.Gid, mode, owner, group)
	}
}

func waitFor(t *testing.T, what string, ok func() error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := ok()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func readFileQuiet(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}

func writeFile(t *testing.T, p, data string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(p, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	writeFile(t, dst, readFile(t, src), 0o644)
}

func chownName(t *testing.T, p, owner, group string) {
	t.Helper()
	u, err := user.Lookup(owner)
	if err != nil {
		t.Fatal(err)
	}
	g, err := user.LookupGroup(group)
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(g.Gid)
	if err := os.Chown(p, uid, gid); err != nil {
		t.Fatal(err)
	}
}

func readPID(p string) int {
	b, err := os.ReadFile(p)
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

func alive(pid int) bool { return pid > 0 && syscall.Kill(pid, 0) == nil }

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
