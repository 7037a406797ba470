package devstack

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestPrometheusConfig: the generated scrape configuration names every
// function once, on its loopback address, labelled with its name, and
// loads the production rules; promtool (Debian's, the version make run
// starts) accepts it. Starting the real Prometheus against the real stack
// is tested in deploy/observability (TestLocalStack), with the one stack
// start that module's tests make.
func TestPrometheusConfig(t *testing.T) {
	fns := map[string]string{"run-start": "http://127.0.0.1:40001", "slack-ingress": "http://127.0.0.1:8080"}
	b, err := scrapeTargets(fns)
	if err != nil {
		t.Fatal(err)
	}
	var got []fileSDTarget
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Targets[0] != "127.0.0.1:40001" || got[0].Labels["service"] != "run-start" ||
		got[1].Targets[0] != "127.0.0.1:8080" || got[1].Labels["service"] != "slack-ingress" {
		t.Fatalf("targets = %+v", got)
	}

	dir := t.TempDir()
	targets := filepath.Join(dir, "targets.json")
	if err := os.WriteFile(targets, b, 0o644); err != nil {
		t.Fatal(err)
	}
	rules, err := filepath.Abs(filepath.Join("..", "..", RulesPath))
	if err != nil {
		t.Fatal(err)
	}
	cfg := prometheusConfig(targets, rules)
	for _, want := range []string{"scrape_interval: 15s", "job_name: coffeebuddy", rules, targets} {
		if !strings.Contains(cfg, want) {
			t.Errorf("config lacks %q:\n%s", want, cfg)
		}
	}
	file := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(file, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not installed (bash .ci/ensure-observability installs it); the config's shape was checked")
	}
	if out, err := exec.Command(promtool, "check", "config", file).CombinedOutput(); err != nil {
		t.Fatalf("promtool check config: %v\n%s", err, out)
	}
}
