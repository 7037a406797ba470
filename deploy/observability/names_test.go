package observability

import (
	"context"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// TestScrapeNames: a histogram is exported as its _bucket, _sum and _count
// series too, and a counter vector with no series yet is not exported (so
// TestLocalStack would report it).
func TestScrapeNames(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "x_seconds", Help: "X."})
	h.Observe(1)
	empty := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "y_total", Help: "Y."}, []string{"a"})
	reg.MustRegister(h, empty)
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	got, err := scrapeNames(context.Background(), srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"x_seconds", "x_seconds_bucket", "x_seconds_sum", "x_seconds_count"} {
		if !got[n] {
			t.Errorf("%s not found in %v", n, got)
		}
	}
	if got["y_total"] {
		t.Error("a counter vector without series counts as exported")
	}
}

// TestUsedMetrics: what the test asks the functions for: raw metric names,
// neither recorded series nor Prometheus's own.
func TestUsedMetrics(t *testing.T) {
	used := usedMetrics(t)
	for _, n := range []string{"slack_ingress_request_duration_seconds_bucket", "coffeebuddy_events_total",
		"coffeebuddy_runs_oldest_past_last_call_seconds", "coffeebuddy_kafka_consumer_group_lag"} {
		if len(used[n]) == 0 {
			t.Errorf("%s is read by the dashboard or rules but not found", n)
		}
	}
	for _, n := range []string{"coffeebuddy:slack_ingress_slo_errors:ratio_rate1h", "ALERTS"} {
		if len(used[n]) != 0 {
			t.Errorf("%s is asked of the functions", n)
		}
	}
}
