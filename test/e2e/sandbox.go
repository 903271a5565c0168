//go:build e2e

package e2e

import (
	"context"
	"crypto/tls"
	"embed"
	"errors"
	"fmt"
	"net"
	"net/textproto"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/template"
	"time"

	"github.com/relaycap/relaycap/postfixconf"
)

//go:embed testdata/*.tmpl
var templates embed.FS

// KeepEnv, when set to 1, keeps the sandbox folder after Close (for
// post-mortems); processes are stopped all the same.
const KeepEnv = "RELAYCAP_E2E_KEEP"

// Account is a test login: a Dovecot user and, unless Unprovisioned, an
// account in relaycap.yaml.
type Account struct {
	Name          string // SASL login and envelope sender
	Password      string
	Limit         int    // daily limit
	Status        string // "" (active) or "suspended"
	Unprovisioned bool   // Dovecot knows the login, relaycap does not
	HourlyLimit   int    // 0: none
	DryRun        bool   // the account's limits in dry run
}

// Listener is one smtpd service of the sandbox standing for a production
// port.
type Listener struct {
	Name        string // syslog_name suffix
	Role        int    // the production port it mirrors
	Port        int    // the loopback port it listens on in this run
	ImplicitTLS bool   // smtpd_tls_wrappermode=yes (465-style)
	// Options are its master.cf -o settings: those of the production
	// listener it mirrors (postfixconf.Services), the README's lines.
	Options []string
}

func (l Listener) String() string { return fmt.Sprintf("%s(:%d as %d)", l.Name, l.Port, l.Role) }

// Options configure a sandbox.
type Options struct {
	// Relaycap is the daemon binary. Empty: Postfix runs without milter and
	// policy (used to check the sandbox alone).
	Relaycap string
	Accounts []Account
	// IDHeader configures the identification header; needs `relaycap id`.
	IDHeader bool
	// Floor is test/load/floor's binary, the do-nothing policy server and
	// milter: with it, the XClientFloor listener uses them instead of
	// relaycap (the benchmark's floor). Empty: no such listener.
	Floor string
	// KeepData makes the sink keep raw messages (off for the benchmark).
	KeepData bool
	// StateTmpfsMB mounts a tmpfs of this many MiB on relaycap's state
	// directory, so a scenario can fill the disk without touching the host's;
	// 0 keeps it on the host's filesystem.
	StateTmpfsMB int
	// Redis, if set, puts relaycap's counter on this Redis
	// (store.backend: redis) under RedisPrefix, shared with every other
	// sandbox given the same.
	Redis, RedisPrefix string
	// Logf receives progress lines; nil discards them.
	Logf func(format string, args ...any)
}

// Sandbox is one running Postfix + Dovecot + sink (+ relaycap) on loopback.
type Sandbox struct {
	Dir       string     // root of every generated file, mode 0755
	Listeners []Listener // the five production listeners
	XClient   Listener   // benchmark: XCLIENT LOGIN=, milter + policy
	Plain     Listener   // benchmark: no auth, no milter, no policy
	// DefaultLimits is a 2525-style listener WITHOUT the raised error
	// limits (Postfix's defaults), the control for scenario 10.
	DefaultLimits Listener
	// AuthLimit is a 2525-style listener on which loopback is subject to
	// smtpd_client_auth_rate_limit (elsewhere it is exempt as $mynetworks);
	// anvil counts per listener, so other scenarios are not limited.
	AuthLimit Listener
	// XClientFloor is the XClient listener with the do-nothing policy
	// server and milter of Options.Floor (benchmark); zero without it.
	XClientFloor Listener
	// MetricsAddr is relaycap's metrics.listen, host:port on loopback.
	MetricsAddr string
	Sink        *Sink
	Webhook     *Webhook  // notify.webhook_url's receiver
	Relaycap    *Relaycap // nil without a binary
	KeysFile    string    // identification header keys, when IDHeader

	opts     Options
	pfConf   string // absolute config_directory of the Postfix instance
	postfixU *user.User

	mu          sync.Mutex
	accounts    []Account
	dovecot     *exec.Cmd
	dovecotDone chan struct{}
	floor       *exec.Cmd
	floorDone   chan struct{}
	postfixUp   bool
	stateMount  bool
	closed      bool
}

// New prepares a sandbox folder; Start brings it up. Close may be called at
// any time, from any goroutine (e.g. a signal handler), also during Start.
func New(opts Options) (*Sandbox, error) {
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	dir, err := os.MkdirTemp("", "rce2e-")
	if err != nil {
		return nil, err
	}
	// Postfix (user postfix) and Dovecot's auth (user dovecot) must traverse it.
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, err
	}
	s := &Sandbox{Dir: dir, opts: opts, accounts: append([]Account(nil), opts.Accounts...)}
	s.pfConf = filepath.Join(dir, "pf", "etc")
	return s, nil
}

// StateDir is relaycap's state_dir.
func (s *Sandbox) StateDir() string { return s.path("rc", "state") }

func (s *Sandbox) path(parts ...string) string {
	return filepath.Join(append([]string{s.Dir}, parts...)...)
}

// MaillogPath is Postfix's log file.
func (s *Sandbox) MaillogPath() string { return s.path("pf", "log", "maillog") }

// DovecotLogPath is Dovecot's log file.
func (s *Sandbox) DovecotLogPath() string { return s.path("dovecot", "dovecot.log") }

// Account returns the configured account by name.
func (s *Sandbox) Account(name string) (Account, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range s.accounts {
		if a.Name == name {
			return a, true
		}
	}
	return Account{}, false
}

// Start generates the configuration and starts, in order: postfix check,
// Dovecot, the sink, relaycap, Postfix. It waits for each to be ready.
// On error the caller must still call Close.
func (s *Sandbox) Start(ctx context.Context) error {
	steps := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"folders", s.makeDirs},
		{"ports", s.pickPorts},
		{"tls", s.makeCert},
		{"config", s.writeConfig},
		{"postfix check", s.postfixCheck},
		{"dovecot", s.startDovecot},
		{"relaycap", s.startRelaycap},
		{"floor", s.startFloor},
		{"postfix", s.startPostfix},
	}
	for _, st := range steps {
		if err := ctx.Err(); err != nil {
			return err
		}
		t0 := time.Now()
		if err := st.fn(ctx); err != nil {
			return fmt.Errorf("sandbox %s: %w", st.name, err)
		}
		s.opts.Logf("sandbox: %s ready (%v)", st.name, time.Since(t0).Round(time.Millisecond))
	}
	return nil
}

func (s *Sandbox) makeDirs(context.Context) error {
	u, err := user.Lookup("postfix")
	if err != nil {
		return fmt.Errorf("user postfix: %w; %s", err, InstallHint)
	}
	s.postfixU = u
	for _, d := range []string{"pf/etc", "pf/spool", "pf/data", "pf/log", "tls", "dovecot/run", "dovecot/state", "rc/state", "sink"} {
		if err := os.MkdirAll(s.path(d), 0o755); err != nil {
			return err
		}
	}
	if n := s.opts.StateTmpfsMB; n > 0 {
		if err := syscall.Mount("tmpfs", s.StateDir(), "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, fmt.Sprintf("size=%dm,mode=0755", n)); err != nil {
			return fmt.Errorf("mount a %d MiB tmpfs on %s: %w", n, s.StateDir(), err)
		}
		s.mu.Lock()
		s.stateMount = true
		s.mu.Unlock()
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	// Pitfall: the data dir must belong to postfix (master.lock), and
	// postlogd (user postfix) writes the maillog.
	for _, d := range []string{"pf/data", "pf/log"} {
		if err := os.Chown(s.path(d), uid, gid); err != nil {
			return err
		}
	}
	return nil
}

// pickPorts reserves free loopback ports for the listeners, all at once so
// no two picks collide, and starts the sink on its own.
func (s *Sandbox) pickPorts(context.Context) error {
	const n = 11
	var lns []net.Listener
	defer func() {
		for _, l := range lns {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		lns = append(lns, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	s.Listeners = []Listener{
		{Name: "smtp", Role: 25, Port: ports[0]},
		{Name: "sub2525", Role: 2525, Port: ports[1]},
		{Name: "sub10025", Role: 10025, Port: ports[2]},
		{Name: "smtps", Role: 465, Port: ports[3], ImplicitTLS: true},
		{Name: "smtps10465", Role: 10465, Port: ports[4], ImplicitTLS: true},
	}
	for i := range s.Listeners {
		opts, err := productionOptions(s.Listeners[i].Role)
		if err != nil {
			return err
		}
		s.Listeners[i].Options = opts
	}
	s.XClient = Listener{Name: "xclient", Role: 0, Port: ports[5]}
	s.Plain = Listener{Name: "bench-plain", Role: 0, Port: ports[6]}
	base := s.Listeners[1].Options
	s.DefaultLimits = Listener{Name: "default-limits", Role: 2525, Port: ports[7]}
	for _, o := range base {
		if !slices.Contains(postfixconf.ErrorLimitOptions, o) {
			s.DefaultLimits.Options = append(s.DefaultLimits.Options, o)
		}
	}
	s.AuthLimit = Listener{Name: "auth-limit", Role: 2525, Port: ports[8],
		Options: append(slices.Clone(base), "smtpd_client_event_limit_exceptions=")}
	if s.opts.Floor != "" {
		s.XClientFloor = Listener{Name: "xclient-floor", Role: 0, Port: ports[9]}
	}
	s.MetricsAddr = fmt.Sprintf("127.0.0.1:%d", ports[10])
	sink, err := StartSink("127.0.0.1:0", s.opts.KeepData)
	if err != nil {
		return err
	}
	hook, err := StartWebhook()
	if err != nil {
		sink.Close()
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		sink.Close()
		hook.Close()
		return errors.New("closed")
	}
	s.Sink, s.Webhook = sink, hook
	return os.WriteFile(s.path("rc", "webhook.secret"), hook.Secret, 0o600)
}

// productionOptions returns the -o settings of the production listener
// for a port, as `relaycap postfix-config` prints them.
func productionOptions(role int) ([]string, error) {
	name := map[int]string{25: "smtp", 465: "smtps"}[role]
	if name == "" {
		name = strconv.Itoa(role)
	}
	for _, svc := range postfixconf.Services() {
		if svc.Name == name {
			return svc.Options, nil
		}
	}
	return nil, fmt.Errorf("postfixconf has no listener for port %d", role)
}

func (s *Sandbox) makeCert(ctx context.Context) error {
	cmd := exec.CommandContext(ctx, "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
		"-nodes", "-keyout", s.path("tls", "key.pem"), "-out", s.path("tls", "cert.pem"), "-days", "30",
		"-subj", "/CN=relay.e2e.test", "-addext", "subjectAltName=DNS:relay.e2e.test,IP:127.0.0.1")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("openssl req: %w\n%s", err, out)
	}
	return nil
}

type tmplData struct {
	Dir, Tag    string
	Listeners   []Listener // production listeners and the scenario-10 pair
	XClientPort int
	PlainPort   int
	Floor       bool
	FloorPort   int
	SinkPort    int
	Relaycap    bool
	StateDir    string
	MilterSock  string
	PolicySock  string
	AdminSock   string
	MetricsAddr string
	WebhookURL  string
	SecretFile  string
	Accounts    []Account
	IDHeader    bool
	KeysFile    string
	Redis       string
	RedisPrefix string
	// RelaycapMain is `relaycap postfix-config --main` for the sandbox's
	// sockets: the README's main.cf lines.
	RelaycapMain string
}

func (s *Sandbox) data() (tmplData, error) {
	s.mu.Lock()
	accts := append([]Account(nil), s.accounts...)
	s.mu.Unlock()
	sort.Slice(accts, func(i, j int) bool { return accts[i].Name < accts[j].Name })
	d := tmplData{
		Dir: s.Dir, Tag: filepath.Base(s.Dir),
		Listeners:   append(slices.Clone(s.Listeners), s.DefaultLimits, s.AuthLimit),
		XClientPort: s.XClient.Port, PlainPort: s.Plain.Port, SinkPort: s.Sink.Port(),
		Floor: s.opts.Floor != "", FloorPort: s.XClientFloor.Port,
		Relaycap:    s.opts.Relaycap != "",
		StateDir:    s.StateDir(),
		MilterSock:  s.path("pf", "spool", "relaycap", "milter.sock"),
		PolicySock:  s.path("pf", "spool", "relaycap", "policy.sock"),
		AdminSock:   s.path("rc", "state", "admin.sock"),
		MetricsAddr: s.MetricsAddr,
		WebhookURL:  s.Webhook.URL(), SecretFile: s.path("rc", "webhook.secret"),
		Accounts: accts, IDHeader: s.opts.IDHeader, KeysFile: s.KeysFile,
		Redis: s.opts.Redis, RedisPrefix: s.opts.RedisPrefix,
	}
	main, err := postfixconf.Main(postfixconf.Options{
		Milter: "unix:" + d.MilterSock, Policy: "unix:" + d.PolicySock, QueueDirectory: s.path("pf", "spool"),
	})
	if err != nil {
		return d, err
	}
	if strings.Contains(main, "WARNING") {
		return d, fmt.Errorf("sandbox sockets outside the queue directory:\n%s", main)
	}
	d.RelaycapMain = main
	return d, nil
}

func render(name, dst string, data any, mode os.FileMode) error {
	t, err := template.New(name).Option("missingkey=error").ParseFS(templates, "testdata/"+name)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if err := t.Execute(f, data); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", name, err)
	}
	return f.Close()
}

func (s *Sandbox) writeConfig(ctx context.Context) error {
	if s.opts.IDHeader {
		s.KeysFile = s.path("rc", "id.keys")
		out, err := exec.CommandContext(ctx, s.opts.Relaycap, "id", "keygen", "--keys-file", s.KeysFile).CombinedOutput()
		if err != nil {
			return fmt.Errorf("relaycap id keygen: %w\n%s", err, out)
		}
	}
	d, err := s.data()
	if err != nil {
		return err
	}
	for _, f := range []struct{ tmpl, dst string }{
		{"main.cf.tmpl", s.path("pf", "etc", "main.cf")},
		{"master.cf.tmpl", s.path("pf", "etc", "master.cf")},
		{"dovecot.conf.tmpl", s.path("dovecot", "dovecot.conf")},
	} {
		if err := render(f.tmpl, f.dst, d, 0o644); err != nil {
			return err
		}
	}
	if err := s.writeUsers(); err != nil {
		return err
	}
	if d.Relaycap {
		return s.WriteRelaycapConfig()
	}
	return nil
}

// writeUsers writes Dovecot's passwd-file: mode 0640, group dovecot.
func (s *Sandbox) writeUsers() error {
	d, err := s.data()
	if err != nil {
		return err
	}
	var b strings.Builder
	for _, a := range d.Accounts {
		fmt.Fprintf(&b, "%s:{PLAIN}%s\n", a.Name, a.Password)
	}
	p := s.path("dovecot", "users")
	if err := os.WriteFile(p, []byte(b.String()), 0o640); err != nil {
		return err
	}
	if g, err := user.LookupGroup("dovecot"); err == nil {
		gid, _ := strconv.Atoi(g.Gid)
		return os.Chown(p, 0, gid)
	}
	return nil
}

// WriteRelaycapConfig renders relaycap.yaml from the current accounts.
func (s *Sandbox) WriteRelaycapConfig() error {
	d, err := s.data()
	if err != nil {
		return err
	}
	return render("relaycap.yaml.tmpl", s.RelaycapConfigPath(), d, 0o640)
}

// RelaycapConfigPath is the daemon's config file.
func (s *Sandbox) RelaycapConfigPath() string { return s.path("rc", "relaycap.yaml") }

// SetLimit changes an account's daily limit in relaycap.yaml (not yet
// reloaded: send SIGHUP with Relaycap.Reload).
func (s *Sandbox) SetLimit(name string, limit int) error {
	s.mu.Lock()
	found := false
	for i := range s.accounts {
		if s.accounts[i].Name == name {
			s.accounts[i].Limit = limit
			found = true
		}
	}
	s.mu.Unlock()
	if !found {
		return fmt.Errorf("no account %s", name)
	}
	return s.WriteRelaycapConfig()
}

func (s *Sandbox) postfix(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "postfix", append([]string{"-c", s.pfConf}, args...)...)
	cmd.Env = append(os.Environ(), "PATH=/usr/sbin:/usr/bin:/sbin:/bin")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("postfix %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// postfixCheck creates the spool folders; Dovecot's auth socket lives
// there. The quick-start flag file then tells postfix-script's start to
// skip the same (slow: some thirty postconf runs) checks a second time.
func (s *Sandbox) postfixCheck(ctx context.Context) error {
	if _, err := s.postfix(ctx, "check"); err != nil {
		return err
	}
	return os.WriteFile(s.path("pf", "spool", "quick-start"), nil, 0o644)
}

func (s *Sandbox) startDovecot(ctx context.Context) error {
	dovecot, err := LookTool("dovecot")
	if err != nil {
		return fmt.Errorf("%w; %s", err, InstallHint)
	}
	out, err := os.OpenFile(s.path("dovecot", "dovecot.out"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer out.Close() // the child has its own copy
	// Pitfall: Dovecot keeps fd 2 open, so give it files, never pipes.
	cmd := exec.Command(dovecot, "-F", "-c", s.path("dovecot", "dovecot.conf"))
	cmd.Stdout, cmd.Stderr = out, out
	// Own process group: Close can reach the auth/log/stats children too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM, Setpgid: true}
	done, err := s.startChild(cmd, &s.dovecot, &s.dovecotDone)
	if err != nil {
		return err
	}

	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := waitDial(ctx, "unix", s.path("pf", "spool", "private", "auth"), done); err != nil {
		return fmt.Errorf("dovecot auth socket: %w\n%s", err, TailFile(s.DovecotLogPath(), 20))
	}
	return nil
}

func (s *Sandbox) startRelaycap(ctx context.Context) error {
	if s.opts.Relaycap == "" {
		return nil
	}
	r := &Relaycap{
		Bin: s.opts.Relaycap, ConfigPath: s.RelaycapConfigPath(), LogPath: s.path("rc", "relaycap.log"),
		MilterSock: s.path("pf", "spool", "relaycap", "milter.sock"),
		PolicySock: s.path("pf", "spool", "relaycap", "policy.sock"),
	}
	// As packaged: the sockets live in the queue directory, so Postfix
	// names them relative to it and a chrooted smtpd reaches them too.
	if err := os.MkdirAll(filepath.Dir(r.MilterSock), 0o755); err != nil {
		return err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return errors.New("closed")
	}
	s.Relaycap = r
	s.mu.Unlock()
	if err := r.Start(ctx); err != nil {
		return fmt.Errorf("%w\nrelaycap log:\n%s", err, TailFile(r.LogPath, 30))
	}
	return s.checkSocketPerms()
}

// startFloor starts the do-nothing policy server and milter on sockets in
// the queue directory, where Postfix names them relative to it.
func (s *Sandbox) startFloor(ctx context.Context) error {
	if s.opts.Floor == "" {
		return nil
	}
	dir := s.path("pf", "spool", "floor")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	out, err := os.OpenFile(s.path("floor.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer out.Close()
	cmd := exec.Command(s.opts.Floor, "-policy", "unix:"+filepath.Join(dir, "policy.sock"),
		"-milter", "unix:"+filepath.Join(dir, "milter.sock"), "-mode", "438") // 0666: Postfix connects
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	done, err := s.startChild(cmd, &s.floor, &s.floorDone)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	for _, sock := range []string{"policy.sock", "milter.sock"} {
		if err := waitDial(ctx, "unix", filepath.Join(dir, sock), done); err != nil {
			return fmt.Errorf("floor %s: %w\n%s", sock, err, TailFile(s.path("floor.log"), 20))
		}
	}
	return nil
}

// checkSocketPerms verifies that Postfix (user postfix) may connect to the
// daemon's sockets: group postfix with group rw (socket: {mode, group}).
func (s *Sandbox) checkSocketPerms() error {
	g, err := user.LookupGroup("postfix")
	if err != nil {
		return err
	}
	gid, _ := strconv.Atoi(g.Gid)
	for _, p := range []string{s.Relaycap.MilterSock, s.Relaycap.PolicySock} {
		st, err := os.Stat(p)
		if err != nil {
			return err
		}
		sys := st.Sys().(*syscall.Stat_t)
		if int(sys.Gid) != gid || st.Mode().Perm()&0o060 != 0o060 {
			return fmt.Errorf("%s is mode %v gid %d; want group postfix (%d) with rw (socket: {mode: \"0660\", group: postfix})",
				p, st.Mode().Perm(), sys.Gid, gid)
		}
	}
	return nil
}

func (s *Sandbox) startPostfix(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return errors.New("closed")
	}
	s.postfixUp = true // from here on Close runs `postfix stop`
	s.mu.Unlock()
	if _, err := s.postfix(ctx, "start"); err != nil {
		return fmt.Errorf("%w\nmaillog:\n%s", err, TailFile(s.MaillogPath(), 30))
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	ls := append(slices.Clone(s.Listeners), s.XClient, s.Plain, s.DefaultLimits, s.AuthLimit)
	if s.opts.Floor != "" {
		ls = append(ls, s.XClientFloor)
	}
	for _, l := range ls {
		if err := waitGreeting(ctx, l); err != nil {
			return fmt.Errorf("listener %v: %w\nmaillog:\n%s", l, err, TailFile(s.MaillogPath(), 30))
		}
	}
	return nil
}

// waitGreeting waits until a listener answers with its 220 banner (after
// the TLS handshake on implicit-TLS listeners) and leaves with QUIT, so
// the probe leaves no "lost connection" noise in the maillog.
func waitGreeting(ctx context.Context, l Listener) error {
	addr := fmt.Sprintf("127.0.0.1:%d", l.Port)
	var last error
	for {
		if last = greet(addr, l.ImplicitTLS); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), last)
		case <-time.After(25 * time.Millisecond):
		}
	}
}

func greet(addr string, implicitTLS bool) error {
	nc, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return err
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	if implicitTLS {
		tc := tls.Client(nc, &tls.Config{ServerName: "relay.e2e.test", InsecureSkipVerify: true}) // our own throwaway cert
		if err := tc.Handshake(); err != nil {
			return err
		}
		nc = tc
	}
	c := textproto.NewConn(nc)
	if _, _, err := c.ReadResponse(220); err != nil {
		return err
	}
	c.Cmd("QUIT")
	c.ReadResponse(221)
	return nil
}

// masterPID reads Postfix's master.pid (0 if none).
func (s *Sandbox) masterPID() int {
	b, err := os.ReadFile(s.path("pf", "spool", "pid", "master.pid"))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

func alive(pid int) bool { return pid > 0 && syscall.Kill(pid, 0) == nil }

// Close stops every process the sandbox started, in reverse start order,
// each by its PID, and removes the folder (unless RELAYCAP_E2E_KEEP=1).
// It is safe to call more than once and concurrently.
func (s *Sandbox) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	pfUp, dovecot, dovecotDone, rc, sink, mounted := s.postfixUp, s.dovecot, s.dovecotDone, s.Relaycap, s.Sink, s.stateMount
	hook := s.Webhook
	floor, floorDone := s.floor, s.floorDone
	s.mu.Unlock()

	var errs []error
	if pfUp {
		pid := s.masterPID()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if _, err := s.postfix(ctx, "stop"); err != nil {
			errs = append(errs, err)
		}
		cancel()
		deadline := time.Now().Add(15 * time.Second)
		for alive(pid) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if alive(pid) {
			syscall.Kill(pid, syscall.SIGKILL)
			errs = append(errs, fmt.Errorf("postfix master %d survived postfix stop; killed", pid))
		}
	}
	if rc != nil {
		if err := rc.Stop(); err != nil {
			errs = append(errs, fmt.Errorf("relaycap: %w", err))
		}
	}
	if floor != nil {
		floor.Process.Signal(syscall.SIGTERM)
		select {
		case <-floorDone:
		case <-time.After(15 * time.Second):
			floor.Process.Kill()
			<-floorDone
			errs = append(errs, errors.New("floor ignored SIGTERM; killed"))
		}
	}
	if sink != nil {
		sink.Close()
	}
	if hook != nil {
		hook.Close()
	}
	if dovecot != nil {
		pgid := dovecot.Process.Pid
		dovecot.Process.Signal(syscall.SIGTERM)
		select {
		case <-dovecotDone:
		case <-time.After(15 * time.Second):
			dovecot.Process.Kill()
			<-dovecotDone
			errs = append(errs, errors.New("dovecot ignored SIGTERM; killed"))
		}
		// The master is gone; its children (same group) follow it.
		for i := 0; i < 100 && syscall.Kill(-pgid, syscall.SIGTERM) == nil; i++ {
			time.Sleep(20 * time.Millisecond)
		}
		syscall.Kill(-pgid, syscall.SIGKILL)
	}
	// Detach: relaycap is stopped, but nothing may keep the folder busy.
	if mounted {
		if err := syscall.Unmount(s.StateDir(), syscall.MNT_DETACH); err != nil {
			errs = append(errs, fmt.Errorf("unmount %s: %w", s.StateDir(), err))
		}
	}
	if os.Getenv(KeepEnv) == "1" {
		s.opts.Logf("sandbox: kept %s", s.Dir)
	} else if err := os.RemoveAll(s.Dir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// QueueEmpty tells whether Postfix's queue holds no message.
func (s *Sandbox) QueueEmpty(ctx context.Context) (bool, string, error) {
	cmd := exec.CommandContext(ctx, "postqueue", "-c", s.pfConf, "-p")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return false, string(out), fmt.Errorf("postqueue -p: %w\n%s", err, out)
	}
	return strings.Contains(string(out), "Mail queue is empty"), string(out), nil
}

// WaitQueueEmpty waits until Postfix has handed every queued message to
// the sink (or given up on it), so the sink's content is final.
func (s *Sandbox) WaitQueueEmpty(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		empty, out, err := s.QueueEmpty(ctx)
		if err != nil {
			return err
		}
		if empty {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("postfix queue not empty: %w\n%s", ctx.Err(), out)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Maillog returns Postfix's log so far.
func (s *Sandbox) Maillog() string {
	b, _ := os.ReadFile(s.MaillogPath())
	return string(b)
}

var cleanupMsgID = regexp.MustCompile(`cleanup\[\d+\]: ([0-9A-Za-z]+): message-id=<([^>]*)>`)

// QueueIDs returns the queue ids Postfix's cleanup logged for a Message-Id.
func (s *Sandbox) QueueIDs(messageID string) []string {
	var ids []string
	for _, m := range cleanupMsgID.FindAllStringSubmatch(s.Maillog(), -1) {
		if m[2] == messageID {
			ids = append(ids, m[1])
		}
	}
	return ids
}

var warnLine = regexp.MustCompile(`(?m)^.*\b(warning|fatal|panic|error):.*$`)
var rcWarnLine = regexp.MustCompile(`(?m)^.*level=(WARN|ERROR).*$`)

// Warnings returns Postfix's warning/fatal/panic lines and relaycap's
// WARN/ERROR lines so far, for a summary at the end of a run.
func (s *Sandbox) Warnings() (postfix, relaycap []string) {
	postfix = warnLine.FindAllString(s.Maillog(), -1)
	if s.Relaycap != nil {
		relaycap = rcWarnLine.FindAllString(s.Relaycap.Log(), -1)
	}
	return postfix, relaycap
}

// Diagnostics returns the tails of Postfix's, relaycap's and Dovecot's
// logs, for a failed test.
func (s *Sandbox) Diagnostics(lines int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "---- sandbox %s\n---- postfix maillog (last %d lines):\n%s\n", s.Dir, lines, TailFile(s.MaillogPath(), lines))
	if s.Relaycap != nil {
		fmt.Fprintf(&b, "---- relaycap log (last %d lines):\n%s\n", lines, TailFile(s.Relaycap.LogPath, lines))
	}
	fmt.Fprintf(&b, "---- dovecot log (last 10 lines):\n%s\n", TailFile(s.DovecotLogPath(), 10))
	return b.String()
}

// startChild starts cmd unless the sandbox is closing, and records it and
// its done channel (closed once it has exited) in *slot and *doneSlot under
// s.mu, so Close finds every child it must stop.
func (s *Sandbox) startChild(cmd *exec.Cmd, slot **exec.Cmd, doneSlot *chan struct{}) (chan struct{}, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errors.New("closed")
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	done := make(chan struct{})
	*slot, *doneSlot = cmd, done
	go func() { cmd.Wait(); close(done) }()
	return done, nil
}
