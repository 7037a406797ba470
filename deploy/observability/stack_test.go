package observability

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/coffeebuddy/coffeebuddy/eventing/devstack"
	"github.com/coffeebuddy/coffeebuddy/shared/blocks"
	"github.com/coffeebuddy/coffeebuddy/shared/events"
	"github.com/coffeebuddy/coffeebuddy/shared/kafka/kafkatest"
	"github.com/coffeebuddy/coffeebuddy/shared/postgres/pgtest"
	"github.com/coffeebuddy/coffeebuddy/shared/slackstandin"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// prometheusBinary finds Debian's prometheus, installing it with the
// project's own script when missing (it installs as root on Debian). Only
// when that is impossible, outside CI, is the Prometheus part skipped.
func prometheusBinary(t *testing.T) string {
	t.Helper()
	if p := devstack.PrometheusBinary(); p != "" {
		return p
	}
	out, err := exec.Command("bash", filepath.Join(repo, ".ci", "ensure-observability")).CombinedOutput()
	if p := devstack.PrometheusBinary(); p != "" {
		return p
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("prometheus missing in CI and .ci/ensure-observability did not install it: %v\n%s", err, out)
	}
	return ""
}

// TestLocalStack starts the whole local stack once (every function a
// process, embedded Kafka, PostgreSQL, the eventing and Slack stand-ins,
// and the local Prometheus make run starts), plays a coffee run with Slack
// rate limiting a few calls and a record that is not a CloudEvent, then:
//
//   - metrics: every metric the dashboard and the alert rules read is
//     exported on the /metrics of some function (histograms by their
//     _bucket/_sum/_count);
//   - prometheus: the local Prometheus scrapes every function (up == 1)
//     and loaded the production rules without errors;
//   - logs: every line every function logged parses with the Fluent Bit
//     configuration's parser settings.
func TestLocalStack(t *testing.T) {
	db := pgtest.New(t)
	kc := kafkatest.New(t)
	env := map[string]string{
		"DATABASE_URL":  db.URL,
		"KAFKA_BROKERS": strings.Join(kc.Brokers, ","),
		"LOG_LEVEL":     "debug",
	}
	prom := prometheusBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	started := time.Now()
	s, err := devstack.Start(ctx, devstack.Options{
		Root:           repo,
		Getenv:         func(k string) string { return env[k] },
		BinDir:         os.Getenv("DEVSTACK_BIN"),
		RandomPorts:    true,
		ReloadInterval: time.Hour,
		Prometheus:     prom != "",
		PrometheusBin:  prom,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("stack started in %s", time.Since(started).Round(time.Millisecond))
	t.Cleanup(func() {
		if t.Failed() {
			for _, n := range append(names(s.Functions), "prometheus") {
				b, _ := os.ReadFile(filepath.Join(s.LogDir, n+".log"))
				if len(b) > 4000 {
					b = b[len(b)-4000:]
				}
				t.Logf("--- %s.log (tail) ---\n%s", n, b)
			}
		}
		s.Close()
	})

	playRun(ctx, t, s, kc.Brokers)

	t.Run("metrics", func(t *testing.T) { metricsExported(ctx, t, s) })
	t.Run("prometheus", func(t *testing.T) {
		if prom == "" {
			t.Skip("prometheus is not installed and .ci/ensure-observability could not install it (not root, or not Debian): apt-get install prometheus")
		}
		prometheusScrapes(ctx, t, s)
	})
	t.Run("logs", func(t *testing.T) { logsShip(t, s) })
}

func names(m map[string]string) []string {
	var out []string
	for n := range m {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// playRun plays a coffee run: /coffee, two orders, close, the runner's DM,
// Mark complete, history. Slack answers the first two chat.postMessage
// calls 429 and one chat.update 500 (the rate-limit path and its metrics),
// and a record that is not a CloudEvent is quarantined.
func playRun(ctx context.Context, t *testing.T, s *devstack.Stack, brokers []string) {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	s.Slack.SetFault("chat.postMessage", slackstandin.FailN(2, http.StatusTooManyRequests, time.Second))
	s.Slack.SetFault("chat.update", slackstandin.FailN(1, http.StatusInternalServerError, 0))
	p := devstack.NewPlayer(s, "C0OBSERVE")
	p.Wait = time.Minute
	alice, bob := devstack.User{ID: "U0ALICE", Name: "alice"}, devstack.User{ID: "U0BOB", Name: "bob"}
	_, err := p.Command(ctx, alice, "/coffee", "10")
	must(err)
	msg, _, err := p.RunMessage(ctx)
	must(err)
	_, err = p.Submit(ctx, alice, "latte", "large", "oat milk")
	must(err)
	_, err = p.Order(ctx, bob, "mocha", "small", "")
	must(err)
	_, err = p.WaitRunMessage(ctx, "Orders (2)")
	must(err)
	must(p.Click(ctx, alice, msg, blocks.ActionCloseNow))
	var dm slackstandin.Message
	var runner devstack.User
	for _, u := range []devstack.User{alice, bob} {
		short := *p
		short.Wait = 20 * time.Second
		if dm, err = short.WaitDM(ctx, u, blocks.ActionComplete); err == nil {
			runner = u
			break
		}
	}
	must(err)
	must(p.Click(ctx, runner, dm, blocks.ActionComplete))
	_, err = p.WaitThread(ctx, msg.TS, "U0BOB")
	must(err)
	_, err = p.Command(ctx, alice, "/coffee-history", "")
	must(err)

	// Not a CloudEvent: quarantined into coffee.deadletter.
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	must(err)
	defer cl.Close()
	must(cl.ProduceSync(ctx, &kgo.Record{Topic: events.TopicOrders, Key: []byte("junk"), Value: []byte("not a cloudevent")}).FirstErr())
}

// scrapeNames returns the metric names a function's /metrics exports;
// a histogram or summary also exports its _bucket/_sum/_count series.
func scrapeNames(ctx context.Context, base string) (map[string]bool, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s/metrics: %s", base, resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("%s/metrics does not parse: %w", base, err)
	}
	out := map[string]bool{}
	for n, mf := range mfs {
		if len(mf.GetMetric()) == 0 {
			continue
		}
		out[n] = true
		switch mf.GetType() {
		case dto.MetricType_HISTOGRAM:
			out[n+"_bucket"], out[n+"_sum"], out[n+"_count"] = true, true, true
		case dto.MetricType_SUMMARY:
			out[n+"_sum"], out[n+"_count"] = true, true
		}
	}
	return out, nil
}

// metricsExported: every name the dashboard and rules read is exported.
// Counters without pre-set labels appear once their first event is
// handled, some after a Slack retry's backoff: poll for a minute.
func metricsExported(ctx context.Context, t *testing.T, s *devstack.Stack) {
	used := usedMetrics(t)
	deadline := time.Now().Add(time.Minute)
	for {
		exported := map[string][]string{}
		for _, n := range names(s.Functions) {
			got, err := scrapeNames(ctx, s.Functions[n])
			if err != nil {
				t.Fatal(err)
			}
			for m := range got {
				exported[m] = append(exported[m], n)
			}
		}
		var missing []string
		for m, where := range used {
			if len(exported[m]) == 0 {
				missing = append(missing, fmt.Sprintf("%s (read by %s)", m, strings.Join(where, "; ")))
			}
		}
		if len(missing) == 0 {
			t.Logf("all %d metric names the dashboard and rules read are exported", len(used))
			return
		}
		if time.Now().After(deadline) {
			sort.Strings(missing)
			t.Fatalf("%d metric name(s) no function exports:\n  %s", len(missing), strings.Join(missing, "\n  "))
		}
		time.Sleep(time.Second)
	}
}

// promQuery runs an instant query against the local Prometheus.
func promQuery(ctx context.Context, base, q string) ([]struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/v1/query?query="+url.QueryEscape(q), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(b, &r); err != nil || r.Status != "success" {
		return nil, fmt.Errorf("query %q: %s %s %v", q, r.Status, r.Error, err)
	}
	return r.Data.Result, nil
}

// prometheusScrapes: the local Prometheus scrapes every function (up is 1
// for each, by its service label) and evaluates the production rules.
func prometheusScrapes(ctx context.Context, t *testing.T, s *devstack.Stack) {
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := s.PrometheusReady(rctx); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(s.PrometheusURL, "http://127.0.0.1:") {
		t.Errorf("Prometheus at %s: want loopback only", s.PrometheusURL)
	}
	// The first scrape of each target comes within one interval.
	deadline := time.Now().Add(devstack.ScrapeInterval + 20*time.Second)
	for {
		res, err := promQuery(ctx, s.PrometheusURL, `up{job="coffeebuddy"}`)
		if err != nil {
			t.Fatal(err)
		}
		up := map[string]string{}
		for _, r := range res {
			up[r.Metric["service"]] = fmt.Sprint(r.Value[1])
		}
		var down []string
		for _, n := range names(s.Functions) {
			if up[n] != "1" {
				down = append(down, fmt.Sprintf("%s=%q", n, up[n]))
			}
		}
		if len(down) == 0 && len(up) == len(s.Functions) {
			t.Logf("Prometheus scrapes all %d functions", len(up))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("up{job=\"coffeebuddy\"} is not 1 for %v (all: %v)", down, up)
		}
		time.Sleep(time.Second)
	}
	// The production rules are loaded and evaluate without error.
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.PrometheusURL+"/api/v1/rules", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var rules struct {
		Data struct {
			Groups []struct {
				Name  string `json:"name"`
				Rules []struct {
					Name      string `json:"name"`
					Health    string `json:"health"`
					LastError string `json:"lastError"`
				} `json:"rules"`
			} `json:"groups"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&rules); err != nil {
		t.Fatal(err)
	}
	rf, err := LoadRules(RulesFile)
	if err != nil {
		t.Fatal(err)
	}
	loaded := 0
	for _, g := range rules.Data.Groups {
		for _, r := range g.Rules {
			loaded++
			if r.Health == "err" {
				t.Errorf("rule %s: %s", r.Name, r.LastError)
			}
		}
	}
	want := 0
	for _, g := range rf.Groups {
		want += len(g.Rules)
	}
	if loaded != want {
		t.Errorf("Prometheus loaded %d rules, rules.yml has %d", loaded, want)
	}
}

// logsShip: every line every function logged in this run parses with the
// Fluent Bit parser settings; with COFFEEBUDDY_UPDATE_TESTDATA=1 a sample
// of them becomes testdata/function-logs.jsonl.
func logsShip(t *testing.T, s *devstack.Stack) {
	var all []string
	sample := map[string][]string{}
	for _, n := range names(s.Functions) {
		for _, l := range readLines(t, filepath.Join(s.LogDir, n+".log")) {
			all = append(all, l)
			has := strings.Contains(l, `"ce_id"`) || strings.Contains(l, `"run_id"`)
			if len(sample[n]) < 3 || (has && len(sample[n]) < 6) {
				sample[n] = append(sample[n], l)
			}
		}
	}
	n := shipped(t, all)
	t.Logf("%d log lines from %d functions parse with the Fluent Bit configuration", n, len(s.Functions))
	if os.Getenv("COFFEEBUDDY_UPDATE_TESTDATA") == "1" {
		var out []string
		for _, f := range names(s.Functions) {
			out = append(out, sample[f]...)
		}
		if err := os.WriteFile(functionLogs, []byte(strings.Join(out, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
