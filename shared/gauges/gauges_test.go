package gauges_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/coffeebuddy/coffeebuddy/shared/gauges"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestReadAtScrapeTime: every scrape reads afresh; a failed read exports
// nothing and logs why, and the rest of the registry still answers.
func TestReadAtScrapeTime(t *testing.T) {
	desc := prometheus.NewDesc("x_items", "Items.", nil, nil)
	var value float64
	var fail error
	var logs bytes.Buffer
	c := gauges.New("x", slog.New(slog.NewJSONHandler(&logs, nil)), func(context.Context) ([]prometheus.Metric, error) {
		if fail != nil {
			return nil, fail
		}
		return []prometheus.Metric{prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, value)}, nil
	}, desc)
	reg := prometheus.NewRegistry()
	other := prometheus.NewGauge(prometheus.GaugeOpts{Name: "y", Help: "Other."})
	reg.MustRegister(c, other)

	for _, v := range []float64{3, 7} {
		value = v
		if got := testutil.ToFloat64(c); got != v {
			t.Fatalf("x_items = %v, want %v (read at scrape time)", got, v)
		}
	}
	fail = errors.New("database down")
	if n, err := testutil.GatherAndCount(reg); err != nil || n != 1 {
		t.Fatalf("with a failed read: %d series, err %v; want only the other gauge", n, err)
	}
	if !strings.Contains(logs.String(), "database down") {
		t.Errorf("the failure is not logged: %s", logs.String())
	}
}
