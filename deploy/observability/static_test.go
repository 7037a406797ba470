package observability

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// repo is the repository root, from this module.
const repo = "../.."

// TestPrometheusRuleIsGenerated: the PrometheusRule is rules.yml, as the
// generator writes it; editing either alone fails here.
func TestPrometheusRuleIsGenerated(t *testing.T) {
	rf, err := LoadRules(RulesFile)
	if err != nil {
		t.Fatal(err)
	}
	want, err := PrometheusRule(rf)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(PrometheusRuleFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs from what %s generates: run `go generate ./...` in deploy/observability", PrometheusRuleFile, RulesFile)
	}
	// And it is the same rules, read back as the Operator reads them.
	var pr prometheusRule
	if err := yaml.UnmarshalStrict(got, &pr); err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(pr.Spec)
	b, _ := json.Marshal(rf)
	if pr.APIVersion != "monitoring.coreos.com/v1" || pr.Kind != "PrometheusRule" || !bytes.Equal(a, b) {
		t.Fatalf("the PrometheusRule's groups are not rules.yml's")
	}
}

// TestDashboardIsGenerated: grafana/coffeebuddy.json is what dashboard.go
// generates.
func TestDashboardIsGenerated(t *testing.T) {
	want, err := Dashboard()
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(DashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs from what dashboard.go generates: run `go generate ./...` in deploy/observability", DashboardFile)
	}
}

// dashboardJSON is the part of Grafana's dashboard model the tests read.
type dashboardJSON struct {
	UID        string `json:"uid"`
	Templating struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
	Panels []struct {
		ID      int    `json:"id"`
		Type    string `json:"type"`
		Title   string `json:"title"`
		GridPos struct{ H, W, X, Y int }
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
}

func loadDashboard(t *testing.T) dashboardJSON {
	t.Helper()
	b, err := os.ReadFile(DashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboardJSON
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	return d
}

// TestDashboardShape: uid coffeebuddy (alerts link to it), unique ids, a
// grid that does not overlap, and the panels the issue asks for.
func TestDashboardShape(t *testing.T) {
	d := loadDashboard(t)
	if d.UID != DashboardUID {
		t.Fatalf("uid %q, want %q", d.UID, DashboardUID)
	}
	ids := map[int]bool{}
	type cell struct{ x, y int }
	used := map[cell]string{}
	var all strings.Builder
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d used twice", p.ID)
		}
		ids[p.ID] = true
		if p.GridPos.X+p.GridPos.W > 24 {
			t.Errorf("%q is wider than the grid", p.Title)
		}
		for x := p.GridPos.X; x < p.GridPos.X+p.GridPos.W; x++ {
			for y := p.GridPos.Y; y < p.GridPos.Y+p.GridPos.H; y++ {
				if other, ok := used[cell{x, y}]; ok {
					t.Fatalf("%q overlaps %q at %d,%d", p.Title, other, x, y)
				}
				used[cell{x, y}] = p.Title
			}
		}
		if p.Type != "row" && len(p.Targets) == 0 {
			t.Errorf("%q has no query", p.Title)
		}
		all.WriteString(p.Title + "\n")
		for _, tg := range p.Targets {
			all.WriteString(tg.Expr + "\n")
		}
	}
	// What the dashboard must show (issue 10), by a title or a metric.
	for _, want := range []string{
		"Command latency p50 / p95 / p99", "histogram_quantile(0.99", "Order volume", "Error rate %",
		"Event rate", "Handle time p95", "Event latency p95", "Retries", "Dead letters", "Circuit breakers",
		"Slack 429s", "Slack retry backlog", "Outbox backlog", "Oldest unpublished outbox row", "Consumer lag",
		"slack_ingress_request_duration_seconds_bucket", "coffeebuddy_breaker_state", "slack_api_rate_limited_total",
		"coffeebuddy_kafka_consumer_group_lag", "coffeebuddy_outbox_oldest_unpublished_age_seconds",
	} {
		if !strings.Contains(all.String(), want) {
			t.Errorf("the dashboard lacks %q", want)
		}
	}
}

// expressions returns every PromQL expression of the dashboard and the
// rules, Grafana's variables substituted, with where it comes from.
func expressions(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	rf, err := LoadRules(RulesFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			out[RulesFile+": "+r.Record+r.Alert] = r.Expr
		}
	}
	d := loadDashboard(t)
	for _, p := range d.Panels {
		for i, tg := range p.Targets {
			e, err := Substitute(tg.Expr)
			if err != nil {
				t.Fatalf("%s %q: %v", DashboardFile, p.Title, err)
			}
			out[DashboardFile+": "+p.Title+" #"+string(rune('A'+i))] = e
		}
	}
	// label_values(<selector>, <label>): the selector is PromQL.
	lv := regexp.MustCompile(`^label_values\((.+),\s*[a-zA-Z_]+\)$`)
	for _, v := range d.Templating.List {
		q, ok := v.Query.(map[string]any)
		if v.Type != "query" || !ok {
			continue
		}
		m := lv.FindStringSubmatch(q["query"].(string))
		if m == nil {
			t.Fatalf("variable %s: query %q is not label_values(selector, label)", v.Name, q["query"])
		}
		out[DashboardFile+": variable "+v.Name] = m[1]
	}
	return out
}

// TestEveryExpressionParses: every expression of the dashboard and the
// rules parses with Prometheus's own parser (the version of Debian's
// promtool and prometheus, v2.42 = module v0.42.0).
func TestEveryExpressionParses(t *testing.T) {
	exprs := expressions(t)
	if len(exprs) < 40 {
		t.Fatalf("only %d expressions found", len(exprs))
	}
	for where, e := range exprs {
		if _, err := MetricNames(e); err != nil {
			t.Errorf("%s: %v\n%s", where, err, e)
		}
	}
}

// UsedMetrics returns every metric name the dashboard and the rules read
// that must come from a function: recorded and Prometheus's own series
// excluded.
func usedMetrics(t *testing.T) map[string][]string {
	t.Helper()
	rf, err := LoadRules(RulesFile)
	if err != nil {
		t.Fatal(err)
	}
	recorded := rf.Recorded()
	out := map[string][]string{}
	for where, e := range expressions(t) {
		names, err := MetricNames(e)
		if err != nil {
			t.Fatalf("%s: %v", where, err)
		}
		for _, n := range names {
			if !recorded[n] && !Synthetic[n] {
				out[n] = append(out[n], where)
			}
		}
	}
	return out
}

// TestRecordedNamesAreUsedAsRecorded: a name a recording rule defines is
// read somewhere, and no recording rule shadows an exported metric's name
// (the colon convention: level:metric:operations).
func TestRecordedNamesAreUsedAsRecorded(t *testing.T) {
	rf, err := LoadRules(RulesFile)
	if err != nil {
		t.Fatal(err)
	}
	var all strings.Builder
	for _, e := range expressions(t) {
		all.WriteString(e + "\n")
	}
	for r := range rf.Recorded() {
		if strings.Count(r, ":") != 2 {
			t.Errorf("recording rule %s: want level:metric:operations", r)
		}
		if !strings.Contains(all.String(), r) {
			t.Errorf("recording rule %s is read by no alert or panel", r)
		}
	}
}

// runbookURL is where every alert's runbook lives in the repository.
const runbookURL = "https://github.com/coffeebuddy/coffeebuddy/blob/main/"

// kebab turns CoffeeBuddyRunStuckPastLastCall into run-stuck-past-last-call.
func kebab(alert string) string {
	s := strings.TrimPrefix(alert, "CoffeeBuddy")
	var b strings.Builder
	for i, r := range s {
		if r >= 'A' && r <= 'Z' {
			if i > 0 {
				b.WriteByte('-')
			}
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}

// TestEveryAlertHasARunbook: every alert names a runbook_url that is a
// file in docs/runbooks called after it; every other runbook file is a
// procedure, and the index lists them all, each in its section. Severity,
// summary and description are set.
func TestEveryAlertHasARunbook(t *testing.T) {
	rf, err := LoadRules(RulesFile)
	if err != nil {
		t.Fatal(err)
	}
	referenced := map[string]bool{}
	for _, a := range rf.Alerts() {
		want := runbookURL + "docs/runbooks/" + kebab(a.Alert) + ".md"
		got := a.Annotations["runbook_url"]
		if got != want {
			t.Errorf("%s: runbook_url %q, want %q", a.Alert, got, want)
			continue
		}
		path := filepath.Join(repo, strings.TrimPrefix(got, runbookURL))
		if _, err := os.Stat(path); err != nil {
			t.Errorf("%s: runbook %s: %v", a.Alert, path, err)
		}
		referenced[filepath.Base(path)] = true
		if s := a.Labels["severity"]; s != "page" && s != "ticket" {
			t.Errorf("%s: severity %q, want page or ticket", a.Alert, s)
		}
		if a.Annotations["summary"] == "" || a.Annotations["description"] == "" {
			t.Errorf("%s: summary and description are required", a.Alert)
		}
	}
	files, err := filepath.Glob(filepath.Join(repo, "docs", "runbooks", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	index, err := os.ReadFile(filepath.Join(repo, "docs", "runbooks", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	// A runbook no alert points at is a procedure (a rotation, say): the
	// index lists it under its own heading, and it needs no alert's parts.
	alerts, procedures, ok := strings.Cut(string(index), "\n## Procedures\n")
	if !ok {
		t.Fatal(`docs/runbooks/README.md has no "## Procedures" section`)
	}
	for _, f := range files {
		base := filepath.Base(f)
		if base == "README.md" {
			continue
		}
		if !referenced[base] {
			if !strings.Contains(procedures, "("+base+")") {
				t.Errorf("runbook %s belongs to no alert and is not listed under Procedures", base)
			}
			continue
		}
		if !strings.Contains(alerts, "("+base+")") {
			t.Errorf("docs/runbooks/README.md does not list %s with its alert", base)
		}
		b, _ := os.ReadFile(f)
		for _, section := range []string{"## Symptoms", "## Dashboards and queries", "## Likely causes", "## Actions", "## Escalation"} {
			if !strings.Contains(string(b), section) {
				t.Errorf("runbook %s lacks %q", base, section)
			}
		}
	}
}

// TestEveryAlertIsUnitTested: rules_test.yml shows every alert both
// firing and not firing (promtool runs the tests in make test).
func TestEveryAlertIsUnitTested(t *testing.T) {
	rf, err := LoadRules(RulesFile)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(RulesTestFile)
	if err != nil {
		t.Fatal(err)
	}
	var tests struct {
		Tests []struct {
			Name          string `json:"name"`
			AlertRuleTest []struct {
				Alertname string `json:"alertname"`
				ExpAlerts []any  `json:"exp_alerts"`
			} `json:"alert_rule_test"`
		} `json:"tests"`
	}
	if err := yaml.Unmarshal(b, &tests); err != nil {
		t.Fatal(err)
	}
	fires, silent := map[string]bool{}, map[string]bool{}
	for _, tc := range tests.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname] = true
			} else {
				silent[a.Alertname] = true
			}
		}
	}
	var names []string
	for _, a := range rf.Alerts() {
		names = append(names, a.Alert)
		if !fires[a.Alert] || !silent[a.Alert] {
			t.Errorf("%s: rules_test.yml shows it firing %v, not firing %v; want both", a.Alert, fires[a.Alert], silent[a.Alert])
		}
	}
	sort.Strings(names)
	t.Logf("alerts: %v", names)
}

// TestAlertmanagerRoutesToOpsAlertsWithoutASecret: every receiver posts to
// #ops-alerts with the webhook URL read from a file; no URL is in the file.
func TestAlertmanagerRoutesToOpsAlertsWithoutASecret(t *testing.T) {
	b, err := os.ReadFile(AlertmanagerFile)
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Global    map[string]any `json:"global"`
		Receivers []struct {
			Name         string           `json:"name"`
			SlackConfigs []map[string]any `json:"slack_configs"`
		} `json:"receivers"`
	}
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	if _, ok := cfg.Global["slack_api_url"]; ok {
		t.Error("global slack_api_url is a secret in the file; use api_url_file")
	}
	if len(cfg.Receivers) == 0 {
		t.Fatal("no receivers")
	}
	for _, r := range cfg.Receivers {
		if len(r.SlackConfigs) == 0 {
			t.Errorf("receiver %s does not post to Slack", r.Name)
		}
		for _, sc := range r.SlackConfigs {
			if sc["channel"] != "#ops-alerts" {
				t.Errorf("receiver %s posts to %v", r.Name, sc["channel"])
			}
			if _, ok := sc["api_url"]; ok {
				t.Errorf("receiver %s has api_url in the file; use api_url_file", r.Name)
			}
			if f, _ := sc["api_url_file"].(string); !strings.HasPrefix(f, "/") {
				t.Errorf("receiver %s: api_url_file %q, want an absolute path to a mounted secret", r.Name, f)
			}
		}
	}
	if regexp.MustCompile(`hooks\.slack\.com/services/`).Match(b) {
		t.Error("a Slack webhook URL is in the file")
	}
}
