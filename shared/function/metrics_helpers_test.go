package function_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/coffeebuddy/coffeebuddy/shared/postgres/pgtest"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// TestMain lets tests use pgtest; the server starts only if one does.
func TestMain(m *testing.M) { pgtest.Main(m) }

// scrape parses /metrics.
func (r *running) scrape(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	code, body := r.get(t, "/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics = %d", code)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	return mfs
}

// sample returns the one sample of name whose labels include want, or nil.
func sample(t *testing.T, mfs map[string]*dto.MetricFamily, name string, want map[string]string) *dto.Metric {
	t.Helper()
	var found []*dto.Metric
next:
	for _, m := range mfs[name].GetMetric() {
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
	switch len(found) {
	case 0:
		return nil
	case 1:
		return found[0]
	}
	t.Fatalf("%s%v: %d samples, want 1", name, want, len(found))
	return nil
}

// value is the value of a counter or gauge sample; -1 when there is none.
func value(t *testing.T, mfs map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	t.Helper()
	m := sample(t, mfs, name, want)
	switch {
	case m == nil:
		return -1
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	t.Fatalf("%s%v is neither a counter nor a gauge", name, want)
	return 0
}
