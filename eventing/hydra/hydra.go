// Package hydra runs an Ory Hydra v2 binary (built by .ci/ensure-hydra) as
// a throwaway OAuth 2.0 server on loopback, for make run's audit API and the
// end-to-end tests: `hydra serve all --dev` with an in-memory database and
// JWT access tokens, and a few admin API calls (clients) over HTTP.
//
// Ports cannot collide: this package binds the public and admin TCP
// sockets itself and keeps them (so the issuer URL, which must name the
// public port, is known before Hydra starts), Hydra serves on Unix sockets
// in a private folder, and each accepted connection is spliced through. No
// port is chosen, released and bound again, so no other process can take it
// in between (the race behind a past CI flake; devstack hands its function
// sockets over for the same reason).
//
// Dev-only: no function imports it.
package hydra

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Version is the Hydra release .ci/ensure-hydra builds and this package is
// tested with.
const Version = "v2.3.0"

// ErrNoBin is returned by FindBin when no Hydra binary is there.
var ErrNoBin = errors.New("no Ory Hydra binary (bash .ci/ensure-hydra builds .tmp/bin/hydra)")

// FindBin locates the Hydra binary: HYDRA_BIN if set, else hydra in
// DEVSTACK_BIN (make's .tmp/bin), else <root>/.tmp/bin/hydra.
func FindBin(getenv func(string) string, root string) (string, error) {
	if b := getenv("HYDRA_BIN"); b != "" {
		if !executable(b) {
			return "", fmt.Errorf("HYDRA_BIN=%s: %w", b, ErrNoBin)
		}
		return b, nil
	}
	var tried []string
	for _, dir := range []string{getenv("DEVSTACK_BIN"), filepath.Join(root, ".tmp", "bin")} {
		if dir == "" {
			continue
		}
		b := filepath.Join(dir, "hydra")
		if executable(b) {
			return b, nil
		}
		tried = append(tried, b)
	}
	return "", fmt.Errorf("%w: tried %s", ErrNoBin, strings.Join(tried, ", "))
}

func executable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// BinVersion is the version `hydra version` reports (v2.3.0 when
// .ci/ensure-hydra built it; a placeholder without its -ldflags).
func BinVersion(bin string) (string, error) {
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		return "", fmt.Errorf("hydra version: %w", err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "Version" {
			return strings.TrimSpace(v), nil
		}
	}
	return "", fmt.Errorf("hydra version: no version in %q", out)
}

// Options configure a Hydra server. Zero values are fine.
type Options struct {
	Bin string // the hydra binary; required
	// PublicAddr and AdminAddr are the loopback TCP addresses to bind;
	// default 127.0.0.1:0 (a free port, held from the start).
	PublicAddr, AdminAddr string
	// Log receives Hydra's own output (JSON lines); default discarded.
	Log io.Writer
	// ReadyTimeout bounds the wait for /health/ready; default 60 s.
	ReadyTimeout time.Duration
}

// Server is a running Hydra.
type Server struct {
	// IssuerURL is URLS_SELF_ISSUER, trailing slash included: tokens' iss
	// and OIDC_ISSUER_URL must equal it byte for byte.
	IssuerURL string
	PublicURL string // http://127.0.0.1:<port>, no trailing slash
	AdminURL  string
	TokenURL  string

	dir     string
	cmd     *exec.Cmd
	done    chan struct{} // closed when cmd has exited
	exitErr error
	proxies []*splice
	closed  sync.Once
}

// Start runs Hydra and returns once its public and admin APIs are ready.
func Start(ctx context.Context, o Options) (_ *Server, err error) {
	if o.Bin == "" {
		return nil, errors.New("hydra: no binary (build it with .ci/ensure-hydra)")
	}
	if o.PublicAddr == "" {
		o.PublicAddr = "127.0.0.1:0"
	}
	if o.AdminAddr == "" {
		o.AdminAddr = "127.0.0.1:0"
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.ReadyTimeout <= 0 {
		o.ReadyTimeout = 60 * time.Second
	}
	// A short path: a Unix socket path must fit in 108 bytes.
	dir, err := os.MkdirTemp("", "hydra-")
	if err != nil {
		return nil, fmt.Errorf("hydra: %w", err)
	}
	s := &Server{dir: dir, done: make(chan struct{})}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	pub, err := listenLoopback(o.PublicAddr)
	if err != nil {
		return nil, fmt.Errorf("hydra: public: %w", err)
	}
	s.proxies = append(s.proxies, newSplice(pub, filepath.Join(dir, "public.sock")))
	adm, err := listenLoopback(o.AdminAddr)
	if err != nil {
		return nil, fmt.Errorf("hydra: admin: %w", err)
	}
	s.proxies = append(s.proxies, newSplice(adm, filepath.Join(dir, "admin.sock")))
	s.PublicURL = "http://" + pub.Addr().String()
	s.AdminURL = "http://" + adm.Addr().String()
	s.IssuerURL = s.PublicURL + "/"
	s.TokenURL = s.IssuerURL + "oauth2/token"

	cmd := exec.Command(o.Bin, "serve", "all", "--dev", "--sqa-opt-out")
	// Hermetic: Hydra reads its whole configuration from the environment,
	// so nothing of the caller's (a DSN, SERVE_*) may leak in.
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + dir,
		"DSN=memory",
		"SERVE_PUBLIC_HOST=unix:" + s.proxies[0].sock,
		"SERVE_ADMIN_HOST=unix:" + s.proxies[1].sock,
		"URLS_SELF_ISSUER=" + s.IssuerURL,
		"SECRETS_SYSTEM=" + randomHex(32),
		"STRATEGIES_ACCESS_TOKEN=jwt",
		"SQA_OPT_OUT=true",
		"LOG_FORMAT=json",
	}
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = o.Log, o.Log
	// Own process group, and gone with its parent: a killed test binary
	// leaves no Hydra behind.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("hydra: start %s: %w", o.Bin, err)
	}
	s.cmd = cmd
	go func() { s.exitErr = cmd.Wait(); close(s.done) }()
	if err := s.waitReady(ctx, o.ReadyTimeout); err != nil {
		return nil, err
	}
	return s, nil
}

func listenLoopback(addr string) (net.Listener, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("%q is not a loopback address", addr)
	}
	return net.Listen("tcp", addr)
}

// waitReady polls both health endpoints until they answer 200, Hydra exits
// or the time is up.
func (s *Server) waitReady(ctx context.Context, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if s.healthy(ctx, s.AdminURL) && s.healthy(ctx, s.PublicURL) {
			return nil
		}
		select {
		case <-s.done:
			return fmt.Errorf("hydra: exited before it was ready: %v", s.exitErr)
		case <-ctx.Done():
			return fmt.Errorf("hydra: not ready: %w", ctx.Err())
		case <-tick.C:
		}
	}
}

func (s *Server) healthy(ctx context.Context, base string) bool {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/health/ready", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false // Hydra has not opened its socket yet
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// Client is an OAuth 2.0 client of the admin API (the fields used here).
type Client struct {
	ID         string   `json:"client_id,omitempty"`
	Secret     string   `json:"client_secret,omitempty"`
	Name       string   `json:"client_name,omitempty"`
	GrantTypes []string `json:"grant_types,omitempty"`
	// Scope is space-separated, as in the admin API.
	Scope    string   `json:"scope,omitempty"`
	Audience []string `json:"audience,omitempty"`
	// TokenEndpointAuthMethod: client_secret_basic (Hydra's default) or
	// client_secret_post.
	TokenEndpointAuthMethod string `json:"token_endpoint_auth_method,omitempty"`
}

// CreateClient creates c through the admin API (POST /admin/clients) and
// returns it as created: with the client id Hydra assigned and, if c had
// none, the secret Hydra generated (shown only in this answer).
func (s *Server) CreateClient(ctx context.Context, c Client) (Client, error) {
	return CreateClient(ctx, s.AdminURL, c)
}

// CreateClient is POST <adminURL>/admin/clients for any Hydra v2.
func CreateClient(ctx context.Context, adminURL string, c Client) (Client, error) {
	if len(c.GrantTypes) == 0 {
		c.GrantTypes = []string{"client_credentials"}
	}
	body, err := json.Marshal(c)
	if err != nil {
		return Client{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(adminURL, "/")+"/admin/clients", bytes.NewReader(body))
	if err != nil {
		return Client{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return Client{}, fmt.Errorf("hydra: create client: %w", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusCreated {
		return Client{}, fmt.Errorf("hydra: create client: %s: %s", resp.Status, b)
	}
	var out Client
	if err := json.Unmarshal(b, &out); err != nil {
		return Client{}, fmt.Errorf("hydra: create client: %w", err)
	}
	return out, nil
}

// Close stops Hydra (SIGTERM, then SIGKILL after 10 s), its sockets and
// its folder.
func (s *Server) Close() {
	s.closed.Do(func() {
		if s.cmd != nil {
			_ = s.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-s.done:
			case <-time.After(10 * time.Second):
				_ = s.cmd.Process.Kill()
				<-s.done
			}
		}
		for _, p := range s.proxies {
			p.close()
		}
		_ = os.RemoveAll(s.dir)
	})
}

// Running reports whether the Hydra process is still up.
func (s *Server) Running() bool {
	select {
	case <-s.done:
		return false
	default:
		return s.cmd != nil
	}
}

// splice accepts on a TCP listener and pipes each connection to a Unix
// socket, both ways, byte for byte (HTTP is untouched).
type splice struct {
	ln   net.Listener
	sock string

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
	served chan struct{} // closed when the accept loop has returned
}

// newSplice serves ln at once: until Hydra listens on sock, a connection
// is accepted and closed, which a readiness poll takes for "not yet".
func newSplice(ln net.Listener, sock string) *splice {
	p := &splice{ln: ln, sock: sock, conns: map[net.Conn]struct{}{}, served: make(chan struct{})}
	go p.serve()
	return p
}

func (p *splice) serve() {
	defer close(p.served)
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.pipe(c)
		}()
	}
}

func (p *splice) pipe(c net.Conn) {
	defer c.Close()
	u, err := net.DialTimeout("unix", p.sock, 5*time.Second)
	if err != nil {
		return // Hydra not listening yet (or gone): the client sees the connection close
	}
	defer u.Close()
	if !p.track(c, u) {
		return
	}
	defer p.untrack(c, u)
	done := make(chan struct{}, 2)
	cp := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		// Pass the half-close on, so that either side sees EOF.
		if cw, ok := dst.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		}
		done <- struct{}{}
	}
	go cp(u, c)
	go cp(c, u)
	<-done
	<-done
}

// track registers a live pair; false once the splice is closing.
func (p *splice) track(a, b net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conns == nil {
		return false
	}
	p.conns[a], p.conns[b] = struct{}{}, struct{}{}
	return true
}

func (p *splice) untrack(a, b net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.conns, a)
	delete(p.conns, b)
}

func (p *splice) close() {
	p.ln.Close()
	<-p.served // no wg.Add after this
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.conns = nil
	p.mu.Unlock()
	p.wg.Wait()
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails on Linux
	return hex.EncodeToString(b)
}
