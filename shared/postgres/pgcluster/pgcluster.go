// Package pgcluster starts a PostgreSQL cluster from the local server
// binaries (initdb + postgres), for `make run` without DATABASE_URL and for
// tests. By default the cluster is throwaway: it trades durability for speed
// (fsync off) and removes all data on Stop. With Options.DataDir it keeps its
// data there across runs (make run with COFFEE_DATA_DIR), with PostgreSQL's
// durable defaults. StopServer, StartServer and Restart stop and start the
// server on the same port and data, for fault injection.
package pgcluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// Options tune Start. The zero value is ready to use.
type Options struct {
	// Port to listen on at 127.0.0.1; 0 picks a free port.
	Port int
	// LogWriter, when set, also receives the server's log output (it is
	// always written to postgres.log in the cluster directory).
	LogWriter io.Writer
	// BinDir overrides where initdb and postgres are looked up.
	BinDir string
	// StartTimeout bounds how long Start waits for the server to accept
	// connections; 0 means 30 s.
	StartTimeout time.Duration
	// DataDir, when set, is the cluster's data directory, kept across runs:
	// Start runs initdb only if it holds no cluster yet, and Stop leaves it
	// in place. Missing parent folders are created. Empty means a throwaway
	// cluster in a temporary directory. When running as root the server
	// runs as the postgres OS user, which must be able to reach DataDir
	// (see MkdirPrivate).
	DataDir string
	// TLS, when set, turns on ssl with this server certificate and key, so
	// clients can connect as production does (sslmode=verify-full). URL
	// and URLFor stay sslmode=disable: the postgres superuser may connect
	// either way.
	TLS *TLS
	// PasswordAuth makes every role but postgres authenticate over TCP
	// with scram-sha-256, as in production (the password from a pgpass
	// file); with TLS those roles must also use TLS (hostssl, and
	// hostnossl rejected). postgres stays trusted, so URL needs no
	// password. Without it every connection is trusted.
	PasswordAuth bool
}

// TLS is the server's certificate chain and private key, PEM-encoded.
type TLS struct {
	CertPEM []byte
	KeyPEM  []byte
}

// Cluster is a running PostgreSQL server.
type Cluster struct {
	dir      string // temporary: socket, log, owner pid; and data unless kept
	dataDir  string
	keep     bool // dataDir is Options.DataDir: kept, and durable
	sockDir  string
	port     int
	postgres string // server binary
	cred     *syscall.Credential
	logw     io.Writer
	timeout  time.Duration // start-up bound
	logFile  *os.File
	owner    *owner // the server's OS user when running as root, else nil
	tls      bool
	hba      string // pg_hba.conf path when PasswordAuth, else ""

	mu      sync.Mutex // guards srv and stopped; held across server start/stop
	srv     *server    // nil while the server is stopped
	stopped bool       // Stop ran: the directory is gone

	stopOnce sync.Once
	stopErr  error
}

// server is one run of the postgres process.
type server struct {
	cmd     *exec.Cmd
	exited  chan struct{} // closed once the process has been reaped
	waitErr error         // set before exited closes
}

// installHint tells a newcomer how to get the server binaries.
const installHint = "install the PostgreSQL server binaries (Debian/Ubuntu: apt-get install postgresql; macOS: brew install postgresql) or set DATABASE_URL"

// Start initialises a cluster (in a new temporary directory, or in
// opts.DataDir unless it holds one already) and starts a server on it. The
// caller must Stop it. A DataDir in use by a running server is refused with
// ErrInUse.
func Start(ctx context.Context, opts Options) (_ *Cluster, err error) {
	defer func() {
		if err != nil {
			err = fmt.Errorf("pgcluster: %w", err)
		}
	}()

	initdb, postgres, err := findBinaries(opts.BinDir)
	if err != nil {
		return nil, err
	}
	cred, owner, err := credential()
	if err != nil {
		return nil, err
	}

	sweepStale(os.TempDir(), time.Now())
	dir, err := os.MkdirTemp("", tempPrefix)
	if err != nil {
		return nil, fmt.Errorf("create temp dir: %w", err)
	}
	// postgres reports its data directory as an absolute path; the
	// readiness check compares against it.
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	timeout := opts.StartTimeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	c := &Cluster{
		dir:      dir,
		dataDir:  filepath.Join(dir, "data"),
		sockDir:  filepath.Join(dir, "sock"),
		postgres: postgres,
		cred:     cred,
		owner:    owner,
		timeout:  timeout,
	}
	if opts.DataDir != "" {
		if c.dataDir, err = filepath.Abs(opts.DataDir); err != nil {
			return nil, fmt.Errorf("data directory: %w", err)
		}
		c.keep = true
	}
	defer func() {
		if err != nil {
			c.kill()
			if c.logFile != nil {
				_ = c.logFile.Close()
			}
			_ = os.RemoveAll(dir) // never c.dataDir when kept
		}
	}()
	if err := os.Mkdir(c.sockDir, 0o700); err != nil {
		return nil, fmt.Errorf("create socket dir: %w", err)
	}
	// Tells sweepStale this directory is in use even while the server is
	// stopped (fault injection) or, for a kept cluster, has no data here.
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return nil, fmt.Errorf("write owner file: %w", err)
	}
	if owner != nil {
		// initdb refuses to run as root, so the postgres OS user owns the tree.
		if err := chownAll(dir, owner.uid, owner.gid); err != nil {
			return nil, err
		}
	}

	c.logFile, err = os.OpenFile(filepath.Join(dir, "postgres.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open server log: %w", err)
	}
	c.logw = c.logFile
	if opts.LogWriter != nil {
		c.logw = io.MultiWriter(c.logFile, opts.LogWriter)
	}

	if c.keep {
		if err := c.prepareKept(ctx, initdb, owner); err != nil {
			return nil, err
		}
	} else if err := c.initdb(ctx, initdb, c.dataDir); err != nil {
		return nil, err
	}

	// Outside the data directory, so a kept cluster's own files stay as
	// they are; the temporary directory goes at Stop.
	if opts.TLS != nil {
		if err := c.writeTLS(opts.TLS.CertPEM, opts.TLS.KeyPEM); err != nil {
			return nil, err
		}
		c.tls = true
	}
	if opts.PasswordAuth {
		if err := c.writeHBA(); err != nil {
			return nil, err
		}
	}

	c.port = opts.Port
	if c.port == 0 {
		if c.port, err = freePort(); err != nil {
			return nil, err
		}
	}
	if err := c.startServer(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// initdb initialises a cluster in dir (absent or empty).
func (c *Cluster) initdb(ctx context.Context, initdb, dir string) error {
	args := []string{"-D", dir, "--auth=trust", "-U", "postgres", "-E", "UTF8", "--locale=C"}
	if !c.keep {
		args = append(args, "--no-sync") // throwaway: nothing to make durable
	}
	cmd := exec.CommandContext(ctx, initdb, args...)
	cmd.Stdout, cmd.Stderr = c.logw, c.logw
	cmd.Env = serverEnv()
	cmd.SysProcAttr = sysProcAttr(c.cred)
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("initdb: %w (log: %s)", err, c.logTail())
	}
	return nil
}

// ErrInUse is returned by Start when a running server already uses the
// DataDir.
var ErrInUse = errors.New("data directory is in use by a running PostgreSQL server")

// prepareKept makes c.dataDir (Options.DataDir) ready to start on: it
// initialises a cluster there if it holds none, refuses one a live server
// uses, and clears a lock file left by a killed server the way PostgreSQL
// expects an administrator to. It never removes data.
func (c *Cluster) prepareKept(ctx context.Context, initdb string, owner *owner) error {
	parent := filepath.Dir(c.dataDir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("create parent of data directory: %w", err)
	}
	if owner != nil {
		if err := c.checkReachable(parent); err != nil {
			return err
		}
	}
	initialised, err := hasCluster(c.dataDir)
	if err != nil {
		return err
	}
	if !initialised {
		return c.initKept(ctx, initdb, owner)
	}
	return c.clearStaleLock()
}

// hasCluster reports whether dir holds an initialised cluster; a folder
// that holds other files is an error, so nothing is initialised over them.
func hasCluster(dir string) (bool, error) {
	if _, err := os.Stat(filepath.Join(dir, "PG_VERSION")); err == nil {
		return true, nil
	}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("data directory: %w", err)
	}
	if len(entries) > 0 {
		return false, fmt.Errorf("data directory %s holds files but no PostgreSQL cluster (no PG_VERSION); not touching it", dir)
	}
	return false, nil
}

// initKept runs initdb next to the data directory and renames the result
// into place, so an initdb killed half-way never leaves a data directory
// that looks initialised (PG_VERSION is written early) but is not.
func (c *Cluster) initKept(ctx context.Context, initdb string, owner *owner) error {
	tmp := c.dataDir + ".initdb"
	if err := os.RemoveAll(tmp); err != nil { // a killed initdb's leftover
		return fmt.Errorf("remove unfinished initdb: %w", err)
	}
	// Created here, not by initdb: when running as root the postgres user
	// may not be allowed to create entries in the parent.
	if err := os.Mkdir(tmp, 0o700); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	if owner != nil {
		if err := os.Lchown(tmp, owner.uid, owner.gid); err != nil {
			return fmt.Errorf("chown data directory to postgres: %w", err)
		}
	}
	if err := c.initdb(ctx, initdb, tmp); err != nil {
		_ = os.RemoveAll(tmp)
		return err
	}
	// An empty data directory (hasCluster checked) is in the way of the
	// rename.
	if err := os.Remove(c.dataDir); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("replace empty data directory: %w", err)
	}
	if err := os.Rename(tmp, c.dataDir); err != nil {
		return fmt.Errorf("move initialised data directory into place: %w", err)
	}
	return nil
}

// clearStaleLock handles the postmaster.pid a server killed without a
// shutdown leaves behind. PostgreSQL itself ignores one whose process is
// gone; a live process means a server uses the directory (ErrInUse),
// unless the PID has since been reused by a process that is not a server
// in this directory, where PostgreSQL would refuse to start and expects the
// stale file removed. Only that lock file is ever removed.
func (c *Cluster) clearStaleLock() error {
	pidFile := filepath.Join(c.dataDir, "postmaster.pid")
	pid, ok := readPid(pidFile)
	if !ok {
		return nil
	}
	// As PostgreSQL decides: ESRCH (gone) and EPERM (another user's, so not
	// a server on a directory the server's user owns) are stale, and the
	// server clears them itself.
	if syscall.Kill(pid, 0) != nil {
		return nil
	}
	// A postmaster's working directory is its data directory.
	cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid))
	if err != nil || sameDir(cwd, c.dataDir) {
		// Unreadable: assume the worst rather than break a live server.
		return fmt.Errorf("%w: %s (PID %d in postmaster.pid); stop that server first", ErrInUse, c.dataDir, pid)
	}
	fmt.Fprintf(c.logw, "pgcluster: removing stale %s: PID %d is not a server in this data directory\n", pidFile, pid)
	if err := os.Remove(pidFile); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove stale postmaster.pid: %w", err)
	}
	return nil
}

// sameDir compares two directories after resolving symlinks.
func sameDir(a, b string) bool {
	ra, err1 := filepath.EvalSymlinks(a)
	rb, err2 := filepath.EvalSymlinks(b)
	if err1 != nil || err2 != nil {
		return filepath.Clean(a) == filepath.Clean(b)
	}
	return ra == rb
}

// checkReachable fails clearly when the postgres OS user (the server's
// user when running as root) cannot enter dir, instead of leaving it to a
// permission error deep in initdb's or postgres's log. It asks the kernel:
// a process started as that user with dir as its working directory.
func (c *Cluster) checkReachable(dir string) error {
	cmd := exec.Command(c.postgres, "--version")
	cmd.Dir = dir
	cmd.Env = serverEnv()
	cmd.SysProcAttr = sysProcAttr(c.cred)
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("running as root, PostgreSQL runs as the postgres OS user, which cannot enter %s (%w): "+
			"choose a folder it can reach (every folder above it needs o+x) or run as a normal user", dir, err)
	}
	return nil
}

// MkdirPrivate creates dir with mode 0700 (missing parents 0755, as mkdir
// -p) for a kept cluster's DataDir to live in. When running as root the
// server runs as the postgres OS user, so that user owns dir: root needs no
// permission, and the server could not enter it otherwise. An existing dir
// is left as it is.
func MkdirPrivate(dir string) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return fmt.Errorf("pgcluster: %w", err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		return fmt.Errorf("pgcluster: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil { // whatever the umask
		return fmt.Errorf("pgcluster: %w", err)
	}
	_, owner, err := credential()
	if err != nil {
		return fmt.Errorf("pgcluster: %w", err)
	}
	if owner != nil {
		if err := os.Lchown(dir, owner.uid, owner.gid); err != nil {
			return fmt.Errorf("pgcluster: chown %s to postgres: %w", dir, err)
		}
	}
	return nil
}

// startServer runs postgres on the cluster's data directory and port and
// waits until it accepts connections. Callers hold c.mu or own c alone.
func (c *Cluster) startServer(ctx context.Context) error {
	args := []string{
		"-D", c.dataDir,
		"-h", "127.0.0.1",
		"-p", strconv.Itoa(c.port),
		"-k", c.sockDir,
		"-c", "max_connections=300",
	}
	if c.tls {
		args = append(args, "-c", "ssl=on",
			"-c", "ssl_cert_file="+filepath.Join(c.dir, tlsDir, "server.crt"),
			"-c", "ssl_key_file="+filepath.Join(c.dir, tlsDir, "server.key"))
	}
	if c.hba != "" {
		args = append(args, "-c", "hba_file="+c.hba, "-c", "password_encryption=scram-sha-256")
	}
	if !c.keep {
		// Throwaway data: speed over crash safety. A kept cluster keeps
		// PostgreSQL's durable defaults.
		args = append(args, "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	}
	cmd := exec.Command(c.postgres, args...)
	cmd.Stdout, cmd.Stderr = c.logw, c.logw
	cmd.Env = serverEnv()
	cmd.SysProcAttr = sysProcAttr(c.cred)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	srv := &server{cmd: cmd, exited: make(chan struct{})}
	go func() {
		srv.waitErr = cmd.Wait()
		close(srv.exited)
	}()
	c.srv = srv
	if err := c.waitReady(ctx, srv, c.timeout); err != nil {
		c.kill()
		return err
	}
	return nil
}

// tlsDir holds the server's certificate and key inside the cluster's
// temporary directory.
const tlsDir = "tls"

// writeTLS writes the server's certificate and key where startServer points
// ssl_cert_file and ssl_key_file. PostgreSQL refuses a key file others can
// read: 0600, owned by the server's OS user. Each file is renamed into
// place, so a reload never reads half of one.
func (c *Cluster) writeTLS(certPEM, keyPEM []byte) error {
	dir := filepath.Join(c.dir, tlsDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("tls dir: %w", err)
	}
	if c.owner != nil {
		if err := os.Lchown(dir, c.owner.uid, c.owner.gid); err != nil {
			return fmt.Errorf("chown tls dir to postgres: %w", err)
		}
	}
	for name, b := range map[string][]byte{"server.crt": certPEM, "server.key": keyPEM} {
		if len(b) == 0 {
			return fmt.Errorf("tls: %s is empty", name)
		}
		tmp := filepath.Join(dir, "."+name)
		if err := os.WriteFile(tmp, b, 0o600); err != nil {
			return fmt.Errorf("tls: %w", err)
		}
		if err := os.Chmod(tmp, 0o600); err != nil { // whatever the umask
			return fmt.Errorf("tls: %w", err)
		}
		if c.owner != nil {
			if err := os.Lchown(tmp, c.owner.uid, c.owner.gid); err != nil {
				return fmt.Errorf("chown %s to postgres: %w", name, err)
			}
		}
		if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
			return fmt.Errorf("tls: %w", err)
		}
	}
	return nil
}

// writeHBA writes the pg_hba.conf of PasswordAuth: the superuser trusted
// (on the socket and over TCP, for URL), every other role by password, and
// with TLS only over TLS.
func (c *Cluster) writeHBA() error {
	lines := []string{
		"# written by pgcluster (Options.PasswordAuth)",
		"local all all trust",
		"host all postgres 127.0.0.1/32 trust",
	}
	if c.tls {
		lines = append(lines,
			"hostssl all all 127.0.0.1/32 scram-sha-256",
			"hostnossl all all 127.0.0.1/32 reject")
	} else {
		lines = append(lines, "host all all 127.0.0.1/32 scram-sha-256")
	}
	c.hba = filepath.Join(c.dir, "pg_hba.conf")
	if err := os.WriteFile(c.hba, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		return fmt.Errorf("pg_hba.conf: %w", err)
	}
	return nil
}

// ReloadTLS replaces the server's certificate and key and has the server
// reload them (SIGHUP, as pg_ctl reload), as an operator rotates a
// certificate without a restart. It returns once the server has reloaded:
// connections opened after that get the new certificate.
func (c *Cluster) ReloadTLS(ctx context.Context, certPEM, keyPEM []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.tls || c.srv == nil {
		return errors.New("pgcluster: reload tls: the server is not running with TLS")
	}
	conn, err := pgx.Connect(ctx, c.URL())
	if err != nil {
		return fmt.Errorf("pgcluster: reload tls: %w", err)
	}
	defer conn.Close(context.Background())
	var before time.Time
	if err := conn.QueryRow(ctx, "SELECT pg_conf_load_time()").Scan(&before); err != nil {
		return fmt.Errorf("pgcluster: reload tls: %w", err)
	}
	if err := c.writeTLS(certPEM, keyPEM); err != nil {
		return fmt.Errorf("pgcluster: reload tls: %w", err)
	}
	if err := c.srv.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		return fmt.Errorf("pgcluster: reload tls: %w", err)
	}
	// The postmaster reloads asynchronously; a new session reports the
	// time of the load it was started under.
	for {
		after, err := loadTime(ctx, c.URL())
		if err != nil {
			return fmt.Errorf("pgcluster: reload tls: %w", err)
		}
		if after.After(before) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("pgcluster: reload tls: no reload seen: %w (log: %s)", ctx.Err(), c.logTail())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func loadTime(ctx context.Context, url string) (time.Time, error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return time.Time{}, err
	}
	defer conn.Close(context.Background())
	var t time.Time
	err = conn.QueryRow(ctx, "SELECT pg_conf_load_time()").Scan(&t)
	return t, err
}

// StopServer shuts the server down (fast shutdown, as pg_ctl stop -m fast:
// SIGINT to the postmaster, which checkpoints) and keeps the data directory,
// so StartServer brings the same data back. Clients' connections break.
// Stopping a stopped server does nothing.
func (c *Cluster) StopServer(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.stopServer(ctx); err != nil {
		return fmt.Errorf("pgcluster: stop server: %w", err)
	}
	return nil
}

// StartServer starts a stopped server again on the same port and data.
// Starting a running server does nothing.
func (c *Cluster) StartServer(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return errors.New("pgcluster: start server: cluster was stopped and removed")
	}
	if c.srv != nil {
		return nil
	}
	if err := c.startServer(ctx); err != nil {
		return fmt.Errorf("pgcluster: start server: %w", err)
	}
	return nil
}

// Restart stops the server (fast shutdown) and starts it again on the same
// port and data, for fault injection.
func (c *Cluster) Restart(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return errors.New("pgcluster: restart: cluster was stopped and removed")
	}
	if err := c.stopServer(ctx); err != nil {
		return fmt.Errorf("pgcluster: restart: %w", err)
	}
	if err := c.startServer(ctx); err != nil {
		return fmt.Errorf("pgcluster: restart: %w", err)
	}
	return nil
}

// URL is the admin URL of the cluster's default database.
func (c *Cluster) URL() string { return c.URLFor("postgres") }

// URLFor is the URL of database db on the cluster, as the postgres superuser.
func (c *Cluster) URLFor(db string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.User("postgres"),
		Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(c.port)),
		Path:     "/" + db,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// Port is the TCP port the server listens on.
func (c *Cluster) Port() int { return c.port }

// Dir is the temporary directory holding socket and log, and the data
// unless Options.DataDir keeps it elsewhere; Stop removes it.
func (c *Cluster) Dir() string { return c.dir }

// DataDir is the server's data directory: Options.DataDir (absolute), or
// inside Dir.
func (c *Cluster) DataDir() string { return c.dataDir }

// Stop shuts the server down (fast shutdown: SIGINT), waits for it and
// removes the temporary directory; a kept DataDir stays. It is safe to call
// more than once.
func (c *Cluster) Stop() error {
	c.stopOnce.Do(func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.stopped = true
		var errs []error
		if err := c.stopServer(context.Background()); err != nil {
			errs = append(errs, err)
		}
		if c.logFile != nil {
			_ = c.logFile.Close()
		}
		if err := os.RemoveAll(c.dir); err != nil { // never a kept dataDir
			errs = append(errs, fmt.Errorf("remove cluster dir: %w", err))
		}
		if err := errors.Join(errs...); err != nil {
			c.stopErr = fmt.Errorf("pgcluster: stop: %w", err)
		}
	})
	return c.stopErr
}

// stopServer does a fast shutdown of the running server, escalating to an
// immediate shutdown and then SIGKILL if it hangs (30 s, or ctx). Callers
// hold c.mu.
func (c *Cluster) stopServer(ctx context.Context) error {
	srv := c.srv
	if srv == nil {
		return nil
	}
	c.srv = nil
	select {
	case <-srv.exited:
		return nil
	default:
	}
	var errs []error
	if err := srv.cmd.Process.Signal(syscall.SIGINT); err != nil && !errors.Is(err, os.ErrProcessDone) {
		errs = append(errs, fmt.Errorf("signal postgres: %w", err))
	}
	timer := time.NewTimer(30 * time.Second)
	defer timer.Stop()
	select {
	case <-srv.exited:
	case <-ctx.Done():
		errs = append(errs, fmt.Errorf("postgres fast shutdown: %w", ctx.Err()))
		srv.escalate()
	case <-timer.C:
		errs = append(errs, errors.New("postgres did not stop within 30s"))
		srv.escalate()
	}
	return errors.Join(errs...)
}

// escalate ends a server that ignored a fast shutdown: immediate shutdown,
// then kill.
func (srv *server) escalate() {
	_ = srv.cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case <-srv.exited:
	case <-time.After(5 * time.Second):
		_ = srv.cmd.Process.Kill()
		<-srv.exited
	}
}

// kill is the failure path of a start: no clean shutdown needed. Callers
// hold c.mu or own c alone.
func (c *Cluster) kill() {
	if srv := c.srv; srv != nil {
		c.srv = nil
		_ = srv.cmd.Process.Kill()
		<-srv.exited
	}
}

func (c *Cluster) waitReady(ctx context.Context, srv *server, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var lastErr error
	for {
		select {
		case <-srv.exited:
			return fmt.Errorf("postgres exited during start-up: %v (log: %s)", srv.waitErr, c.logTail())
		default:
		}
		pingCtx, pingCancel := context.WithTimeout(ctx, 2*time.Second)
		err := c.ping(pingCtx)
		pingCancel()
		if err == nil {
			return nil
		}
		if errors.Is(err, errNotOurs) {
			// Someone else holds the port (only possible with opts.Port, or
			// a race on the free port): fail fast instead of using their server.
			return fmt.Errorf("port %d: %w (log: %s)", c.port, err, c.logTail())
		}
		lastErr = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("postgres not accepting connections after %s: %w (last error: %v; log: %s)",
				timeout, ctx.Err(), lastErr, c.logTail())
		case <-srv.exited:
		case <-time.After(50 * time.Millisecond):
		}
	}
}

var errNotOurs = errors.New("another PostgreSQL server answers on this port")

// ping connects over TCP and checks the server is the one running on our
// data directory, not another one that happens to own the port.
func (c *Cluster) ping(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, c.URL())
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	var dataDir string
	if err := conn.QueryRow(ctx, "SELECT current_setting('data_directory')").Scan(&dataDir); err != nil {
		return err
	}
	if filepath.Clean(dataDir) != filepath.Clean(c.dataDir) {
		return fmt.Errorf("%w (its data directory is %s)", errNotOurs, dataDir)
	}
	return nil
}

// logTail returns the end of the server log for error messages.
func (c *Cluster) logTail() string {
	b, err := os.ReadFile(filepath.Join(c.dir, "postgres.log"))
	if err != nil {
		return "unavailable"
	}
	const max = 2000
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return strings.TrimSpace(string(b))
}

// findBinaries looks for initdb and postgres in binDir, then on PATH, then in
// the newest /usr/lib/postgresql/*/bin (Debian keeps them off PATH).
func findBinaries(binDir string) (initdb, postgres string, err error) {
	if binDir != "" {
		return inDir(binDir)
	}
	if i, err1 := exec.LookPath("initdb"); err1 == nil {
		if p, err2 := exec.LookPath("postgres"); err2 == nil {
			return i, p, nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return pgVersion(dirs[i]) > pgVersion(dirs[j]) })
	for _, d := range dirs {
		if i, p, err := inDir(d); err == nil {
			return i, p, nil
		}
	}
	return "", "", fmt.Errorf("initdb/postgres not found on PATH or under /usr/lib/postgresql/*/bin: %s", installHint)
}

func inDir(dir string) (string, string, error) {
	i, p := filepath.Join(dir, "initdb"), filepath.Join(dir, "postgres")
	for _, f := range []string{i, p} {
		if st, err := os.Stat(f); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
			return "", "", fmt.Errorf("%s not found or not executable: %s", f, installHint)
		}
	}
	return i, p, nil
}

// pgVersion extracts the major version from /usr/lib/postgresql/<v>/bin.
func pgVersion(binDir string) float64 {
	v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(binDir)), 64)
	return v
}

type owner struct{ uid, gid int }

// credential returns the credential to run the server as: PostgreSQL refuses
// to run as root, so root drops to the postgres OS user.
func credential() (*syscall.Credential, *owner, error) {
	if os.Geteuid() != 0 {
		return nil, nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, nil, fmt.Errorf("running as root needs a postgres OS user (%w): %s", err, installHint)
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return nil, nil, fmt.Errorf("postgres uid %q: %w", u.Uid, err)
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		return nil, nil, fmt.Errorf("postgres gid %q: %w", u.Gid, err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}, &owner{uid, gid}, nil
}

func sysProcAttr(cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{
		Credential: cred,
		// Own process group: a terminal Ctrl-C reaches us, not the server,
		// so we can still shut it down cleanly.
		Setpgid: true,
		// If the parent (e.g. a test binary) is killed, take the server with
		// it. Linux ties this to the thread that started the child; the Go
		// runtime only retires threads of goroutines that exit while
		// LockOSThread-ed, which nothing here does.
		Pdeathsig: syscall.SIGKILL,
	}
}

// serverEnv keeps the parent's environment minus variables that would
// redirect initdb/postgres (PGDATA, PGPORT, ...), and pins a neutral locale.
func serverEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PG") || strings.HasPrefix(kv, "LC_") || strings.HasPrefix(kv, "LANG=") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "LC_ALL=C", "LANG=C")
}

func chownAll(root string, uid, gid int) error {
	err := filepath.WalkDir(root, func(path string, _ os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, uid, gid)
	})
	if err != nil {
		return fmt.Errorf("chown cluster dir to postgres: %w", err)
	}
	return nil
}

// freePort asks the kernel for a free loopback port. Another process could
// take it before postgres binds; the start-up check then reports it.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// tempPrefix names every cluster's temporary directory.
const tempPrefix = "coffeebuddy-pg-"

// ownerFile holds the pid of the process that started the cluster.
const ownerFile = "owner.pid"

// sweepStale removes cluster directories left behind by processes that were
// killed before they could Stop (a test binary killed by its timeout, say):
// each holds a whole data directory. A directory is stale when it is over a
// minute old (a cluster being initialised has no pid file yet) and neither
// the process that started it (owner.pid) nor the server named in its
// postmaster.pid is alive, or it never got that far. A kept cluster's data
// is never under these directories.
func sweepStale(tmp string, now time.Time) {
	dirs, _ := filepath.Glob(filepath.Join(tmp, tempPrefix+"*"))
	for _, d := range dirs {
		fi, err := os.Stat(d)
		if err != nil || !fi.IsDir() || now.Sub(fi.ModTime()) < time.Minute {
			continue
		}
		if pidAlive(filepath.Join(d, "data", "postmaster.pid")) || pidAlive(filepath.Join(d, ownerFile)) {
			continue
		}
		_ = os.RemoveAll(d)
	}
}

// pidAlive reports whether the process in a pid file (first line, as in
// postmaster.pid) still exists.
func pidAlive(pidFile string) bool {
	pid, ok := readPid(pidFile)
	return ok && processAlive(pid)
}

// readPid reads the pid on a pid file's first line.
func readPid(pidFile string) (int, bool) {
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return 0, false
	}
	line, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil || pid <= 0 {
		return 0, false
	}
	return pid, true
}

// processAlive reports whether a process exists (signal 0; EPERM means it
// exists but belongs to another user).
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
