// Package devstack runs the whole bot on one machine: PostgreSQL, Kafka,
// every function as its own process, the eventing stand-in and, without
// Slack credentials, the local Slack stand-in. `make run` and the end-to-end
// test both start it, so the test exercises exactly what a newcomer runs.
package devstack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/coffeebuddy/coffeebuddy/eventing/standin"
	"github.com/coffeebuddy/coffeebuddy/shared/config"
	"github.com/coffeebuddy/coffeebuddy/shared/events"
	"github.com/coffeebuddy/coffeebuddy/shared/kafka"
	"github.com/coffeebuddy/coffeebuddy/shared/kafka/kafkaembed"
	"github.com/coffeebuddy/coffeebuddy/shared/postgres"
	"github.com/coffeebuddy/coffeebuddy/shared/postgres/pgcluster"
	"github.com/coffeebuddy/coffeebuddy/shared/slackstandin"
	"github.com/twmb/franz-go/pkg/kgo"
)

// IngressName is the one function that faces Slack over HTTP.
const IngressName = "slack-ingress"

// Options configure a stack. Zero values mean make run's defaults.
type Options struct {
	Root    string              // repository root (holds functions/ and eventing/)
	Getenv  func(string) string // the configuration contract; os.Getenv
	Log     *slog.Logger
	LogDir  string // one file per process; default <tmp>/logs
	BinDir  string // prebuilt function binaries; built into <tmp>/bin when empty
	TempDir string // removed by Close; default a fresh os.MkdirTemp

	KafkaPorts     []int  // embedded Kafka ports; default kafkaembed.DefaultPorts, nil-able via RandomPorts
	RandomPorts    bool   // tests: every listener on a free port
	SlackAddr      string // local Slack stand-in; default 127.0.0.1:8091
	Transcript     io.Writer
	ReloadInterval time.Duration
	// Prometheus starts a local Prometheus (Debian's binary; PrometheusBin
	// or the one on PATH, else Start fails with ErrNoPrometheus) scraping
	// every function with the production rules (prometheus.go).
	Prometheus    bool
	PrometheusBin string
	// KeepData honours COFFEE_DATA_DIR (make run). Off, the embedded
	// PostgreSQL and Kafka always start empty: demos, benchmarks and the
	// chaos suite count on that whatever the environment says.
	KeepData bool
	// HydraBin, when set, makes Ory Hydra (this binary) audit-api's local
	// token issuer; otherwise the dev issuer (eventing/devissuer) is. A
	// local issuer starts only when OIDC_ISSUER_URL is unset. make run
	// passes .tmp/bin/hydra when .ci/ensure-hydra has built it.
	HydraBin string
	// IssuerAddr is the local issuer's loopback address (Hydra's public
	// API); default 127.0.0.1:0, a free port held from the start.
	IssuerAddr string
}

// passThrough are the contract variables a function reads itself.
var passThrough = []string{
	"LOG_LEVEL", "COFFEE_LAST_CALL", "COFFEE_WARN_BEFORE", "COFFEE_REMIND_AFTER", "DATABASE_MAX_CONNS", "SHUTDOWN_TIMEOUT",
	"SLACK_API_URL", "SLACK_BOT_TOKEN", "SLACK_BOT_TOKEN_FILE", "SLACK_SIGNING_SECRET", "SLACK_SIGNING_SECRET_FILE",
	"SLACK_USER_RATE_LIMIT",
}

// ownPassThrough are contract variables only one function reads: they pass
// through to it alone (the cursor key is a secret the others have no use
// for).
var ownPassThrough = map[string][]string{
	// make run against your own issuer: OIDC_ISSUER_URL and the rest.
	AuditAPIName: {"OIDC_ISSUER_URL", "OIDC_AUDIENCE", "OIDC_SKIP_AUDIENCE_CHECK", "OIDC_REQUIRED_SCOPE", "AUDIT_CURSOR_KEY", "AUDIT_CURSOR_KEY_FILE"},
}

// Stack is a running local CoffeeBuddy.
type Stack struct {
	DatabaseURL string
	Brokers     []string
	IngressURL  string
	SlackURL    string               // the stand-in's base URL; empty with real Slack
	Slack       *slackstandin.Server // nil with real Slack
	Functions   map[string]string    // name -> base URL
	// IngressAddr is the address slack-ingress's socket is bound to:
	// loopback with the local stand-in's signing secret, every interface
	// with real Slack credentials.
	IngressAddr string
	LogDir      string
	// DataDir is COFFEE_DATA_DIR when the embedded PostgreSQL or Kafka keep
	// their data there (Options.KeepData), and KeptData the folders under
	// it they use; empty when all data is temporary, removed by Close.
	DataDir  string
	KeptData []string
	// The embedded PostgreSQL and Kafka, for fault injection; nil when the
	// stack uses DATABASE_URL / KAFKA_BROKERS.
	Postgres *pgcluster.Cluster
	Kafka    *kafkaembed.Cluster
	// PrometheusURL is the local Prometheus (Options.Prometheus), on
	// loopback; empty without one. PrometheusReady waits for it.
	PrometheusURL string

	prometheusDone chan struct{}
	// OIDC is audit-api's token issuer: the local one this stack runs
	// (with a client for this run) or the one OIDC_ISSUER_URL names.
	OIDC OIDC

	log     *slog.Logger
	tempDir string
	ownTemp bool
	procs   map[string]*proc // fixed after Start; a proc's cmd changes on restart (mu)
	mu      sync.Mutex
	env     []string
	ownEnv  map[string][]string // a function's own variables, after env
	binDir  string
	stops   []func()
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	standin *standin.StandIn
}

// Start brings the stack up; on error everything started is stopped.
func Start(ctx context.Context, o Options) (_ *Stack, err error) {
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	s := &Stack{log: o.Log, Functions: map[string]string{}, procs: map[string]*proc{}, ownEnv: map[string][]string{}}
	defer func() {
		if err != nil {
			s.Close() // s, not the nil result: stop what did start
		}
	}()
	if o.TempDir == "" {
		sweepStale(os.TempDir(), time.Now())
		if o.TempDir, err = os.MkdirTemp("", tempPrefix); err != nil {
			return nil, fmt.Errorf("devstack: %w", err)
		}
		// Lets a later stack sweep this folder if this process is killed.
		if err := os.WriteFile(filepath.Join(o.TempDir, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
			return nil, fmt.Errorf("devstack: %w", err)
		}
		s.ownTemp = true
	}
	s.tempDir = o.TempDir
	if o.LogDir == "" {
		o.LogDir = filepath.Join(o.TempDir, "logs")
	}
	s.LogDir = o.LogDir
	if err := os.MkdirAll(o.LogDir, 0o755); err != nil {
		return nil, fmt.Errorf("devstack: %w", err)
	}
	cfg, err := config.Load(o.Getenv)
	if err != nil {
		return nil, err
	}

	names, err := functionNames(o.Root)
	if err != nil {
		return nil, err
	}
	if o.BinDir == "" {
		o.BinDir = filepath.Join(o.TempDir, "bin")
		if err := Build(ctx, o.Root, o.BinDir, names); err != nil {
			return nil, err
		}
	}

	if err := s.startStorage(ctx, o, cfg); err != nil {
		return nil, err
	}
	if slices.Contains(names, AuditAPIName) {
		if s.ownEnv[AuditAPIName], err = s.startIssuer(ctx, o); err != nil {
			return nil, err
		}
	}

	// Sockets first: the Slack stand-in must know where the ingress
	// listens.
	if err := s.listenFunctions(names, o, cfg); err != nil {
		return nil, err
	}
	// Prometheus now, while the functions start: it is ready about when
	// they are, and scrapes they miss while starting cost nothing.
	if o.Prometheus {
		if err := s.startPrometheus(o); err != nil {
			return nil, err
		}
	}

	env := []string{
		"DATABASE_URL=" + s.DatabaseURL,
		"KAFKA_BROKERS=" + strings.Join(s.Brokers, ","),
	}
	if cfg.SlackLocal {
		if err := s.startSlack(o); err != nil {
			return nil, err
		}
		env = append(env,
			"SLACK_API_URL="+s.Slack.APIURL(),
			"SLACK_BOT_TOKEN="+config.LocalSlackBotToken,
			"SLACK_SIGNING_SECRET="+config.LocalSlackSigningSecret)
	}
	s.env = functionEnv(o, env)
	s.binDir = o.BinDir

	for _, n := range names {
		if err := s.startProc(s.procs[n]); err != nil {
			return nil, err
		}
	}
	for _, n := range names {
		if err := waitReady(ctx, n, s.Functions[n], 60*time.Second); err != nil {
			return nil, fmt.Errorf("devstack: %s not ready (log: %s): %w", n, filepath.Join(o.LogDir, n+".log"), err)
		}
	}

	if err := s.startEventing(ctx, o); err != nil {
		return nil, err
	}
	return s, nil
}

// listenFunctions binds every function's socket. The stack binds them
// itself and hands each to its process (socket activation), so no other
// process can take a port between choosing and binding it, and a restarted
// function serves the same socket.
func (s *Stack) listenFunctions(names []string, o Options, cfg config.Config) error {
	for _, n := range names {
		addr := "127.0.0.1:0"
		if n == IngressName {
			addr = ingressAddr(cfg, o.RandomPorts)
		}
		p, err := s.listen(n, addr, o.LogDir)
		if err != nil {
			return err
		}
		s.procs[n] = p
		s.Functions[n] = fmt.Sprintf("http://127.0.0.1:%d", p.addr.Port)
		if n == IngressName {
			s.IngressAddr = p.addr.String()
		}
	}
	s.IngressURL = s.Functions[IngressName]
	return nil
}

// ingressAddr is where slack-ingress listens. With real Slack credentials,
// on every interface at PORT, as a deployed ingress: real Slack reaches it
// through whatever exposes PORT (a tunnel, a proxy, the host). Without
// them, on loopback only: the local stand-in's signing secret is in the
// source, so anyone who could reach the port could sign commands.
func ingressAddr(cfg config.Config, randomPorts bool) string {
	switch {
	case randomPorts:
		return "127.0.0.1:0" // tests, demos: nothing outside needs it
	case cfg.SlackLocal:
		return net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.Port))
	default:
		return net.JoinHostPort("", strconv.Itoa(cfg.Port))
	}
}

// startStorage starts (or connects to) PostgreSQL and Kafka, in
// COFFEE_DATA_DIR when the stack keeps data, and migrates the database.
func (s *Stack) startStorage(ctx context.Context, o Options, cfg config.Config) error {
	if err := s.openDataDir(o, cfg); err != nil {
		return err
	}
	if err := s.startPostgres(ctx, o, cfg); err != nil {
		return err
	}
	return s.startKafka(ctx, o, cfg)
}

// ErrDataDirInUse is returned by Start when another running stack keeps
// its data in the same COFFEE_DATA_DIR.
var ErrDataDirInUse = errors.New("COFFEE_DATA_DIR is in use by another running CoffeeBuddy")

// dataLockFile, in COFFEE_DATA_DIR, is flocked by the stack using it and
// holds its pid. The kernel drops the lock when the process dies however it
// dies, so a killed run leaves nothing stale behind; the file stays.
const dataLockFile = "coffeebuddy.lock"

// openDataDir takes COFFEE_DATA_DIR for this stack when it keeps data
// (Options.KeepData) and something embedded can use it: it creates the
// folder (0700) and locks it against a second stack.
func (s *Stack) openDataDir(o Options, cfg config.Config) error {
	if !o.KeepData || cfg.DataDir == "" {
		return nil
	}
	if cfg.DatabaseURL != "" && len(cfg.KafkaBrokers) > 0 {
		s.log.Warn("COFFEE_DATA_DIR unused: DATABASE_URL and KAFKA_BROKERS are set, nothing embedded keeps data", "dir", cfg.DataDir)
		return nil
	}
	// As root, PostgreSQL runs as the postgres OS user: pgcluster makes
	// the folder that user's, so the server can reach its data inside.
	if err := pgcluster.MkdirPrivate(cfg.DataDir); err != nil {
		return fmt.Errorf("devstack: COFFEE_DATA_DIR: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(cfg.DataDir, dataLockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("devstack: COFFEE_DATA_DIR: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		b, _ := io.ReadAll(io.LimitReader(f, 32))
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return fmt.Errorf("devstack: %w: %s (PID %s); stop it first or choose another folder",
				ErrDataDirInUse, cfg.DataDir, strings.TrimSpace(string(b)))
		}
		return fmt.Errorf("devstack: COFFEE_DATA_DIR: lock %s: %w", cfg.DataDir, err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	s.stops = append(s.stops, func() { f.Close() }) // first in, last out: after postgres and kafka stop
	s.DataDir = cfg.DataDir
	return nil
}

func (s *Stack) startPostgres(ctx context.Context, o Options, cfg config.Config) error {
	s.DatabaseURL = cfg.DatabaseURL
	if s.DatabaseURL == "" {
		logf, err := os.Create(filepath.Join(o.LogDir, "postgres.log"))
		if err != nil {
			return fmt.Errorf("devstack: %w", err)
		}
		s.stops = append(s.stops, func() { logf.Close() })
		popts := pgcluster.Options{LogWriter: logf}
		if s.DataDir != "" {
			popts.DataDir = filepath.Join(s.DataDir, "postgres")
		}
		pg, err := pgcluster.Start(ctx, popts)
		if errors.Is(err, pgcluster.ErrInUse) {
			return fmt.Errorf("devstack: COFFEE_DATA_DIR %s: %w", s.DataDir, err)
		}
		if err != nil {
			return err
		}
		if s.DataDir != "" {
			s.KeptData = append(s.KeptData, pg.DataDir())
		}
		s.stops = append(s.stops, func() {
			if err := pg.Stop(); err != nil {
				s.log.Warn("postgres stop", "err", err)
			}
		})
		s.DatabaseURL = pg.URL()
		s.Postgres = pg
	}
	if err := postgres.MigrateUp(ctx, s.DatabaseURL); err != nil {
		return err
	}
	return nil
}

func (s *Stack) startKafka(ctx context.Context, o Options, cfg config.Config) error {
	if len(cfg.KafkaBrokers) > 0 {
		s.Brokers = cfg.KafkaBrokers
		cl, err := kgo.NewClient(kgo.SeedBrokers(s.Brokers...))
		if err != nil {
			return fmt.Errorf("devstack: kafka: %w", err)
		}
		defer cl.Close()
		return kafka.Provision(ctx, cl, events.Topics)
	}
	ports := o.KafkaPorts
	if ports == nil && !o.RandomPorts {
		ports = kafkaembed.DefaultPorts
	}
	// Persisted, so that the fault suite can stop and restart the cluster
	// with its records and committed offsets intact, as a real one would;
	// under COFFEE_DATA_DIR, so that the next run finds them too.
	dataDir := filepath.Join(o.TempDir, "kafka")
	if s.DataDir != "" {
		dataDir = filepath.Join(s.DataDir, "kafka")
	}
	k, err := kafkaembed.StartWith(ctx, kafkaembed.Options{Ports: ports, DataDir: dataDir, Topics: events.Topics})
	if err != nil {
		return err
	}
	if s.DataDir != "" {
		s.KeptData = append(s.KeptData, dataDir)
	}
	s.stops = append(s.stops, k.Close)
	s.Kafka = k
	s.Brokers = k.Brokers()
	return nil
}

// slackAddr is where the local Slack stand-in listens: loopback, as it
// signs commands with the secret in the source.
func slackAddr(o Options) string {
	switch {
	case o.SlackAddr != "":
		return o.SlackAddr
	case o.RandomPorts:
		return "127.0.0.1:0"
	default:
		return "127.0.0.1:8091"
	}
}

// LocalUsers are the people the local Slack knows from the start, so its
// web page has someone to play as at once (more can be added there); the
// demo and the journey tests play them too.
var LocalUsers = map[string]string{"U0ALICE": "alice", "U0BOB": "bob", "U0CAROL": "carol", "U0DAVE": "dave"}

func (s *Stack) startSlack(o Options) error {
	addr := slackAddr(o)
	srv := slackstandin.New(slackstandin.Options{
		Users:           LocalUsers,
		BotToken:        config.LocalSlackBotToken,
		SigningSecret:   config.LocalSlackSigningSecret,
		Transcript:      o.Transcript,
		Logger:          s.log,
		CommandsURL:     s.IngressURL + "/slack/commands",
		InteractionsURL: s.IngressURL + "/slack/interactions",
	})
	if err := srv.Start(addr); err != nil {
		return fmt.Errorf("devstack: slack stand-in on %s: %w", addr, err)
	}
	s.stops = append(s.stops, func() { srv.Close() })
	s.Slack, s.SlackURL = srv, srv.URL()
	return nil
}

// proc is one function process and the socket it serves, which outlives
// the process so that a restart serves the same address.
type proc struct {
	name string
	addr *net.TCPAddr // bound
	ln   *os.File
	logf *os.File
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

func (s *Stack) listen(name, addr, logDir string) (*proc, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("devstack: %s: listen on %s: %w", name, addr, err)
	}
	f, err := l.(*net.TCPListener).File()
	l.Close() // f is a duplicate that keeps the socket open
	if err != nil {
		return nil, fmt.Errorf("devstack: %s: socket: %w", name, err)
	}
	logf, err := os.OpenFile(filepath.Join(logDir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("devstack: %w", err)
	}
	s.stops = append(s.stops, func() { f.Close(); logf.Close() })
	return &proc{name: name, addr: l.Addr().(*net.TCPAddr), ln: f, logf: logf}, nil
}

// functionEnv is every function's environment: the configuration contract
// passes through from Options.Getenv (so a test's environment is
// hermetic); the stack's own wiring wins.
func functionEnv(o Options, wiring []string) []string {
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for _, k := range passThrough {
		if v := o.Getenv(k); v != "" {
			env = append(env, k+"="+v)
		}
	}
	// LISTEN_FDS: the socket is the child's descriptor 3 (ExtraFiles[0]).
	return append(append(env, wiring...), "LISTEN_FDS=1")
}

func (s *Stack) startProc(p *proc) error {
	cmd := exec.Command(filepath.Join(s.binDir, p.name))
	cmd.Env = append(slices.Clip(s.env), s.ownEnv[p.name]...) // the last of a duplicate key wins
	cmd.ExtraFiles = []*os.File{p.ln}
	cmd.Stdout, cmd.Stderr = p.logf, p.logf
	// Own process group: Ctrl-C reaches the stack, which stops functions
	// in order (SIGTERM, drain) instead of all dying at once.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("devstack: start %s: %w", p.name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	s.mu.Lock()
	p.cmd, p.done = cmd, done
	s.mu.Unlock()
	return nil
}

// KillFunction kills the function's process at once (SIGKILL: no drain),
// as a crashed or evicted pod would die. Its socket stays bound, so
// requests queue until StartFunction.
func (s *Stack) KillFunction(name string) error {
	p, ok := s.procs[name]
	if !ok {
		return fmt.Errorf("devstack: no function %q", name)
	}
	s.mu.Lock()
	cmd, done := p.cmd, p.done
	s.mu.Unlock()
	if cmd == nil {
		return nil
	}
	_ = cmd.Process.Kill()
	<-done
	return nil
}

// StartFunction starts a killed function again on its socket and waits
// until it is ready.
func (s *Stack) StartFunction(ctx context.Context, name string) error {
	p, ok := s.procs[name]
	if !ok {
		return fmt.Errorf("devstack: no function %q", name)
	}
	select {
	case <-p.done:
	default:
		return fmt.Errorf("devstack: %s is still running", name)
	}
	if err := s.startProc(p); err != nil {
		return err
	}
	return waitReady(ctx, name, s.Functions[name], 60*time.Second)
}

func (s *Stack) startEventing(ctx context.Context, o Options) error {
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel
	st, err := standin.New(standin.Config{
		Dir:     filepath.Join(o.Root, "eventing"),
		Brokers: s.Brokers,
		Resolve: func(kind, name string) (string, error) {
			if u, ok := s.Functions[name]; ok && kind == "Service" {
				return u + "/", nil
			}
			return "", fmt.Errorf("no local function for %s %q", kind, name)
		},
		Logger:         s.log.With("component", "eventing-standin"),
		ReloadInterval: o.ReloadInterval,
	})
	if err != nil {
		return err
	}
	s.standin = st
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := st.Run(sctx); err != nil && !errors.Is(err, context.Canceled) {
			s.log.Error("eventing stand-in stopped", "err", err)
		}
	}()
	select {
	case <-st.Ready():
		return nil
	case <-time.After(30 * time.Second):
		return errors.New("devstack: eventing stand-in did not become ready in 30s")
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Eventing returns the stand-in (to fire a PingSource now, for example).
func (s *Stack) Eventing() *standin.StandIn { return s.standin }

// Close stops everything in reverse order and removes temporary data; data
// kept in COFFEE_DATA_DIR stays.
func (s *Stack) Close() {
	// Eventing delivers nothing new from here on, and the functions get
	// SIGTERM at the same time, as pods and dispatchers stop independently
	// in a cluster: a function holding a delivery (run-timer waits for a
	// run's moment) hands it back at SIGTERM, so the stand-in's wait for
	// its in-flight requests ends at once rather than when the hold would.
	if s.cancel != nil {
		s.cancel()
	}
	s.mu.Lock()
	var running []*proc
	for _, p := range s.procs {
		if p.cmd != nil {
			running = append(running, p)
		}
	}
	s.mu.Unlock()
	for _, p := range running {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
	}
	s.wg.Wait()
	for _, p := range running {
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
	for i := len(s.stops) - 1; i >= 0; i-- {
		s.stops[i]()
	}
	if s.ownTemp {
		_ = os.RemoveAll(s.tempDir)
	}
}

// RepoRoot walks up from the working directory to the one holding go.work:
// the commands (make run, demo, benchmarks, chaos) run from anywhere inside
// the repository.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.work above the current directory; run from the repository")
		}
		dir = parent
	}
}

// functionNames lists functions/<name>/func.yaml.
func functionNames(root string) ([]string, error) {
	matches, err := filepath.Glob(filepath.Join(root, "functions", "*", "func.yaml"))
	if err != nil || len(matches) == 0 {
		return nil, fmt.Errorf("devstack: no functions/*/func.yaml under %s", root)
	}
	var names []string
	for _, m := range matches {
		names = append(names, filepath.Base(filepath.Dir(m)))
	}
	sort.Strings(names)
	return names, nil
}

// Build compiles each function into binDir (go build through go.work).
func Build(ctx context.Context, root, binDir string, names []string) error {
	args := []string{"build", "-o", binDir + string(filepath.Separator)}
	for _, n := range names {
		args = append(args, "./functions/"+n)
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("devstack: go build: %w\n%s", err, out)
	}
	return nil
}

// waitReady waits until the function called name answers readiness at
// base, and checks that it is that function: another process that took its
// port (the port was free when chosen) would otherwise be mistaken for it.
func waitReady(ctx context.Context, name, base string, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if ok, err := ready(ctx, name, base); ok || err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

func ready(ctx context.Context, name, base string) (bool, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/health/liveness", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false, nil // not listening yet
	}
	resp.Body.Close()
	if got := resp.Header.Get("X-Coffeebuddy-Function"); got != name {
		return false, fmt.Errorf("%s is answered by %q, not %s: its port was taken", base, got, name)
	}
	req, _ = http.NewRequestWithContext(ctx, http.MethodGet, base+"/health/readiness", nil)
	if resp, err = http.DefaultClient.Do(req); err != nil {
		return false, nil
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK, nil
}

const (
	tempPrefix = "coffeebuddy-run-"
	ownerFile  = "owner.pid"
)

// sweepStale removes stack folders whose owning process is gone (a test
// binary killed by its timeout leaves its folder behind). Folders under a
// minute old are left alone: their owner may not have written its pid yet.
func sweepStale(tmp string, now time.Time) {
	dirs, _ := filepath.Glob(filepath.Join(tmp, tempPrefix+"*"))
	for _, d := range dirs {
		fi, err := os.Stat(d)
		if err != nil || !fi.IsDir() || now.Sub(fi.ModTime()) < time.Minute {
			continue
		}
		if b, err := os.ReadFile(filepath.Join(d, ownerFile)); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 {
				if err := syscall.Kill(pid, 0); err == nil || errors.Is(err, syscall.EPERM) {
					continue
				}
			}
		}
		_ = os.RemoveAll(d)
	}
}
