package breaker_test

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coffeebuddy/coffeebuddy/shared/breaker"
	"github.com/coffeebuddy/coffeebuddy/shared/logbuf"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// wait bounds every wait on a condition; only spent when a test fails.
const wait = 20 * time.Second

// short is the open period of tests that wait for half-open.
const short = 50 * time.Millisecond

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", wait, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func fail(t *testing.T, b *breaker.Breaker, n int) {
	t.Helper()
	for i := range n {
		done, err := b.Allow()
		if err != nil {
			t.Fatalf("failure %d: Allow: %v", i+1, err)
		}
		done(breaker.Failure)
	}
}

func TestDefaults(t *testing.T) {
	s := breaker.New("slack", breaker.Settings{}).Settings()
	if s.Failures != 5 || s.HalfOpenAfter != 30*time.Second {
		t.Errorf("defaults = %+v, want 5 failures / 30s", s)
	}
}

func TestOpensAfterConsecutiveFailures(t *testing.T) {
	b := breaker.New("slack", breaker.Settings{})
	fail(t, b, 4)
	done, err := b.Allow()
	if err != nil {
		t.Fatal(err)
	}
	done(breaker.Success) // breaks the run
	fail(t, b, 4)
	if b.State() != breaker.Closed {
		t.Fatalf("state after 4+4 failures split by a success = %v, want closed", b.State())
	}
	fail(t, b, 1)
	if b.State() != breaker.Open {
		t.Fatalf("state after 5 consecutive failures = %v, want open", b.State())
	}
	_, err = b.Allow()
	var oe *breaker.OpenError
	if !errors.Is(err, breaker.ErrOpen) || !errors.As(err, &oe) || oe.Downstream != "slack" || oe.RetryAfterSeconds() != "30" {
		t.Fatalf("Allow when open = %v, want an OpenError for slack, retry after 30", err)
	}
	if err := b.Err(); !errors.Is(err, breaker.ErrOpen) {
		t.Errorf("Err when open = %v", err)
	}
	if got := err.Error(); got != "slack unavailable: circuit breaker open" {
		t.Errorf("message = %q", got)
	}
}

func TestHalfOpen(t *testing.T) {
	for _, tc := range []struct {
		trial breaker.Outcome
		want  breaker.State
	}{
		{breaker.Success, breaker.Closed},
		{breaker.Failure, breaker.Open},
		{breaker.Ignore, breaker.Open}, // a cancelled trial proves nothing
	} {
		t.Run(fmt.Sprint(tc.trial), func(t *testing.T) {
			var mu sync.Mutex
			var seen []string
			b := breaker.New("postgres", breaker.Settings{Failures: 2, HalfOpenAfter: short},
				breaker.OnTransition(func(tr breaker.Transition) {
					mu.Lock()
					defer mu.Unlock()
					seen = append(seen, tr.From.String()+"→"+tr.To.String())
				}))
			fail(t, b, 2)
			eventually(t, "half-open", func() bool { return b.State() == breaker.HalfOpen })
			if b.Err() != nil {
				t.Fatal("Err when half-open: want nil")
			}
			done, err := b.Allow()
			if err != nil {
				t.Fatalf("trial: %v", err)
			}
			// One trial at a time.
			if _, err := b.Allow(); !errors.Is(err, breaker.ErrOpen) {
				t.Fatalf("second call during the trial: %v, want ErrOpen", err)
			}
			done(tc.trial)
			mu.Lock()
			got := strings.Join(seen, ", ")
			mu.Unlock()
			want := "closed→open, open→half-open, half-open→" + tc.want.String()
			// (A slow machine may already have moved on to half-open again.)
			if !strings.HasPrefix(got, want) {
				t.Errorf("after trial %v: transitions %q, want %q", tc.trial, got, want)
			}
		})
	}
}

func TestObserve(t *testing.T) {
	b := breaker.New("postgres", breaker.Settings{Failures: 3})
	b.Observe(breaker.Failure)
	b.Observe(breaker.Ignore)
	b.Observe(breaker.Failure)
	if n := b.ConsecutiveFailures(); n != 2 {
		t.Fatalf("consecutive failures = %d, want 2 (Ignore neither counts nor resets)", n)
	}
	b.Observe(breaker.Failure)
	if b.State() != breaker.Open {
		t.Fatalf("state = %v, want open", b.State())
	}
	b.Observe(breaker.Success) // dropped while open
	if b.State() != breaker.Open {
		t.Fatalf("a success observed while open closed the breaker")
	}

	// Half-open: the first outcome decides.
	for _, tc := range []struct {
		first breaker.Outcome
		want  breaker.State
	}{{breaker.Success, breaker.Closed}, {breaker.Failure, breaker.Open}} {
		b := breaker.New("postgres", breaker.Settings{Failures: 1, HalfOpenAfter: short})
		b.Observe(breaker.Failure)
		eventually(t, "half-open", func() bool { return b.State() == breaker.HalfOpen })
		b.Observe(breaker.Ignore) // proves nothing, decides nothing
		if b.State() != breaker.HalfOpen {
			t.Fatalf("Ignore while half-open moved the breaker to %v", b.State())
		}
		b.Observe(tc.first)
		// A transition to open restarts the open period; on a slow machine
		// it may already be half-open again, but never closed.
		if got := b.State(); got != tc.want && !(tc.want == breaker.Open && got == breaker.HalfOpen) {
			t.Errorf("after %v while half-open: %v, want %v", tc.first, got, tc.want)
		}
	}
}

func TestMetricsAndLogs(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := breaker.NewMetrics("order-place", reg)
	if err != nil {
		t.Fatal(err)
	}
	logs := &logbuf.Buffer{}
	log := slog.New(slog.NewJSONHandler(logs, nil))
	slack := breaker.New("slack", breaker.Settings{Failures: 1}, breaker.WithLogger(log), m.Option())
	pg := breaker.New("postgres", breaker.Settings{Failures: 1, HalfOpenAfter: short}, breaker.WithLogger(log), m.Option())

	for _, d := range []string{"slack", "postgres"} {
		if got := metricValue(t, reg, "coffeebuddy_breaker_state", map[string]string{"function": "order-place", "downstream": d}); got != 0 {
			t.Errorf("%s state = %v, want 0", d, got)
		}
		if got := metricValue(t, reg, "coffeebuddy_breaker_transitions_total",
			map[string]string{"function": "order-place", "downstream": d, "from": "closed", "to": "open"}); got != 0 {
			t.Errorf("%s closed→open before any = %v, want 0 (exported from the start)", d, got)
		}
	}

	fail(t, slack, 1)
	if got := metricValue(t, reg, "coffeebuddy_breaker_state", map[string]string{"downstream": "slack"}); got != 2 {
		t.Errorf("slack state = %v, want 2 (open)", got)
	}

	fail(t, pg, 1)
	// Scraping reads the state, so half-open shows without traffic.
	eventually(t, "state 1 (half-open) in a scrape", func() bool {
		return metricValue(t, reg, "coffeebuddy_breaker_state", map[string]string{"downstream": "postgres"}) == 1
	})
	pg.Observe(breaker.Success)
	if got := metricValue(t, reg, "coffeebuddy_breaker_state", map[string]string{"downstream": "postgres"}); got != 0 {
		t.Errorf("postgres state = %v, want 0 (closed)", got)
	}
	for _, tr := range []struct {
		downstream, from, to string
		want                 float64
	}{
		{"postgres", "closed", "open", 1}, {"postgres", "open", "half-open", 1}, {"postgres", "half-open", "closed", 1},
		{"postgres", "half-open", "open", 0}, {"slack", "closed", "open", 1}, {"slack", "open", "half-open", 0},
	} {
		if got := metricValue(t, reg, "coffeebuddy_breaker_transitions_total",
			map[string]string{"downstream": tr.downstream, "from": tr.from, "to": tr.to}); got != tr.want {
			t.Errorf("%s %s→%s = %v, want %v", tr.downstream, tr.from, tr.to, got, tr.want)
		}
	}

	var got []string
	lines, err := logs.Lines()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range lines {
		if l["level"] != "WARN" {
			t.Errorf("transition log line %v: want level WARN", l)
		}
		got = append(got, fmt.Sprintf("%s %s: %s→%s", l["downstream"], l["msg"], l["from"], l["to"]))
	}
	want := []string{
		"slack circuit breaker open: closed→open",
		"postgres circuit breaker open: closed→open",
		"postgres circuit breaker half-open: open→half-open",
		"postgres circuit breaker closed: half-open→closed",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("transition logs:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// metricValue returns the value of the one sample of name whose labels
// include want; it fails the test when there is none or several.
func metricValue(t *testing.T, g prometheus.Gatherer, name string, want map[string]string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var found []*dto.Metric
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, lp := range m.GetLabel() {
				labels[lp.GetName()] = lp.GetValue()
			}
			for k, v := range want {
				if labels[k] != v {
					continue next
				}
			}
			found = append(found, m)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%s%v: %d samples, want 1", name, want, len(found))
	}
	m := found[0]
	switch {
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Counter != nil:
		return m.Counter.GetValue()
	}
	t.Fatalf("%s: neither gauge nor counter", name)
	return 0
}
