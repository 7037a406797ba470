package devstack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

// The local Prometheus (make run): Debian's prometheus binary, scraping
// every function's /metrics every ScrapeInterval with the same rules as
// production (deploy/observability/prometheus/rules.yml), on loopback, its
// data in the stack's temporary folder or COFFEE_DATA_DIR/prometheus. The
// stack does not wait for it to be ready (PrometheusReady does), so it
// does not slow the start.

// ScrapeInterval is how often the local Prometheus scrapes each function.
const ScrapeInterval = 15 * time.Second

// PrometheusAddr is where make run's Prometheus listens when the port is
// free (another port on loopback when it is not).
const PrometheusAddr = "127.0.0.1:9090"

// RulesPath is the rule file, relative to the repository root.
var RulesPath = filepath.Join("deploy", "observability", "prometheus", "rules.yml")

// ErrNoPrometheus is returned by Start when Options.Prometheus is set and
// no prometheus binary is found.
var ErrNoPrometheus = errors.New("prometheus is not installed (Debian: apt-get install prometheus; as root, make run PROMETHEUS=1 installs it)")

// PrometheusBinary returns the prometheus binary on PATH (Debian's package
// installs /usr/bin/prometheus), or "" when there is none.
func PrometheusBinary() string {
	p, err := exec.LookPath("prometheus")
	if err != nil {
		return ""
	}
	return p
}

// fileSDTarget is one entry of a Prometheus file_sd file.
type fileSDTarget struct {
	Targets []string          `json:"targets"`
	Labels  map[string]string `json:"labels"`
}

// scrapeTargets is the file_sd content for functions (name → base URL):
// one target per function, labelled service=<name> as a Kubernetes
// ServiceMonitor would label it (the metrics carry function= themselves).
func scrapeTargets(functions map[string]string) ([]byte, error) {
	names := make([]string, 0, len(functions))
	for n := range functions {
		names = append(names, n)
	}
	sort.Strings(names)
	var ts []fileSDTarget
	for _, n := range names {
		host := strings.TrimPrefix(strings.TrimPrefix(functions[n], "http://"), "https://")
		ts = append(ts, fileSDTarget{Targets: []string{host}, Labels: map[string]string{"service": n}})
	}
	return json.MarshalIndent(ts, "", "  ")
}

// prometheusConfig is the configuration file: job coffeebuddy over the
// file_sd targets, rules (when the file exists).
func prometheusConfig(targetsFile, rulesFile string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Written by devstack (make run); removed with the stack.\n")
	fmt.Fprintf(&b, "global:\n  scrape_interval: %s\n  evaluation_interval: %s\n", ScrapeInterval, ScrapeInterval)
	if rulesFile != "" {
		fmt.Fprintf(&b, "rule_files:\n  - %q\n", rulesFile)
	}
	fmt.Fprintf(&b, "scrape_configs:\n  - job_name: coffeebuddy\n    metrics_path: /metrics\n")
	fmt.Fprintf(&b, "    file_sd_configs:\n      - files: [%q]\n        refresh_interval: 30s\n", targetsFile)
	return b.String()
}

// freeLoopback returns addr if it can be bound now, else a free loopback
// address.
func freeLoopback(addr string) (string, error) {
	if addr != "" {
		if l, err := net.Listen("tcp", addr); err == nil {
			l.Close()
			return addr, nil
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// startPrometheus writes the configuration and starts the binary.
func (s *Stack) startPrometheus(o Options) error {
	bin := o.PrometheusBin
	if bin == "" {
		bin = PrometheusBinary()
	}
	if bin == "" {
		return ErrNoPrometheus
	}
	dir := filepath.Join(s.tempDir, "prometheus")
	data := filepath.Join(dir, "data")
	if s.DataDir != "" {
		data = filepath.Join(s.DataDir, "prometheus")
		s.KeptData = append(s.KeptData, data)
	}
	for _, d := range []string{dir, data} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("devstack: prometheus: %w", err)
		}
	}
	targets, err := scrapeTargets(s.Functions)
	if err != nil {
		return fmt.Errorf("devstack: prometheus: %w", err)
	}
	targetsFile := filepath.Join(dir, "targets.json")
	if err := os.WriteFile(targetsFile, targets, 0o644); err != nil {
		return fmt.Errorf("devstack: prometheus: %w", err)
	}
	rules, _ := filepath.Abs(filepath.Join(o.Root, RulesPath))
	if _, err := os.Stat(rules); err != nil {
		s.log.Warn("prometheus without CoffeeBuddy's rules", "rules", rules, "err", err)
		rules = ""
	}
	configFile := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(configFile, []byte(prometheusConfig(targetsFile, rules)), 0o644); err != nil {
		return fmt.Errorf("devstack: prometheus: %w", err)
	}
	want := PrometheusAddr
	if o.RandomPorts {
		want = ""
	}
	addr, err := freeLoopback(want)
	if err != nil {
		return fmt.Errorf("devstack: prometheus: %w", err)
	}
	logf, err := os.Create(filepath.Join(s.LogDir, "prometheus.log"))
	if err != nil {
		return fmt.Errorf("devstack: prometheus: %w", err)
	}
	cmd := exec.Command(bin,
		"--config.file="+configFile,
		"--storage.tsdb.path="+data,
		"--storage.tsdb.retention.time=15d",
		"--web.listen-address="+addr,
		"--log.format=json",
	)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("devstack: start prometheus: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	s.prometheusDone = done
	s.stops = append(s.stops, func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		logf.Close()
	})
	s.PrometheusURL = "http://" + addr
	return nil
}

// PrometheusReady waits until the local Prometheus answers /-/ready, and
// fails at once if it exited (its log is <LogDir>/prometheus.log).
func (s *Stack) PrometheusReady(ctx context.Context) error {
	if s.PrometheusURL == "" {
		return errors.New("devstack: no local Prometheus")
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.PrometheusURL+"/-/ready", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-s.prometheusDone:
			return fmt.Errorf("devstack: prometheus exited (log: %s)", filepath.Join(s.LogDir, "prometheus.log"))
		case <-ctx.Done():
			return fmt.Errorf("devstack: prometheus not ready: %w", ctx.Err())
		case <-tick.C:
		}
	}
}
