package function_test

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestEventLatency: coffeebuddy_event_latency_seconds measures from the
// event's time attribute to done (handled, or failed permanently); events
// still to be retried and events without a time are not observed.
func TestEventLatency(t *testing.T) {
	r, _ := startRouter(t)
	sent := time.Now().Add(-2 * time.Minute).UTC()
	at := map[string]string{"Ce-Time": sent.Format(time.RFC3339Nano)}
	for _, ev := range []struct {
		id, typ string
		extra   map[string]string
		status  int
	}{
		{"lat-1", typeOK, at, http.StatusOK},
		{"lat-2", typePermanent, at, http.StatusBadRequest},
		{"lat-3", typeRetry, at, http.StatusInternalServerError},
		{"lat-4", typeLog, nil, http.StatusOK}, // no time attribute
	} {
		resp, body := do(t, ceRequest(t, r.url, ev.id, ev.typ, `{}`, ev.extra))
		if resp.StatusCode != ev.status {
			t.Fatalf("%s: %d (%s), want %d", ev.id, resp.StatusCode, body, ev.status)
		}
	}
	upper := time.Since(sent).Seconds()
	mfs := r.scrape(t)
	for _, typ := range []string{typeOK, typePermanent} {
		m := sample(t, mfs, "coffeebuddy_event_latency_seconds", map[string]string{"function": "test-fn", "type": typ})
		if m == nil || m.Histogram == nil {
			t.Errorf("no latency histogram for %s", typ)
			continue
		}
		h := m.Histogram
		if h.GetSampleCount() != 1 || h.GetSampleSum() < 120 || h.GetSampleSum() > upper {
			t.Errorf("latency for %s: %d samples, sum %v; want 1 sample in [120, %v]", typ, h.GetSampleCount(), h.GetSampleSum(), upper)
		}
	}
	for _, typ := range []string{typeRetry, typeLog} {
		if m := sample(t, mfs, "coffeebuddy_event_latency_seconds", map[string]string{"type": typ}); m != nil {
			t.Errorf("latency observed for %s: %v", typ, m)
		}
	}
}

// TestRejectedMetric: requests that are not well-formed CloudEvents are
// counted by reason.
func TestRejectedMetric(t *testing.T) {
	r, _ := startRouter(t)
	mfs := r.scrape(t)
	for _, reason := range []string{"method", "not_cloudevent", "malformed"} {
		if got := value(t, mfs, "coffeebuddy_events_rejected_total", map[string]string{"function": "test-fn", "reason": reason}); got != 0 {
			t.Errorf("%s before any request = %v, want 0 (exported from the start)", reason, got)
		}
	}
	post := func(contentType, body string, headers map[string]string) {
		req, err := http.NewRequest(http.MethodPost, r.url, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", contentType)
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		resp, _ := do(t, req)
		if resp.StatusCode < 400 || resp.StatusCode > 499 {
			t.Errorf("%s %q: %d, want 4xx", contentType, body, resp.StatusCode)
		}
	}
	post("text/plain", "hello", nil)
	post("application/json", `{"drink":"tea"}`, nil)
	post("application/cloudevents+json", `{"specversion":"1.0",`, nil)
	post("application/json", `{}`, map[string]string{"Ce-Specversion": "1.0", "Ce-Source": "/s", "Ce-Type": typeOK}) // no id
	post("application/json", `{}`, map[string]string{"Ce-Specversion": "1.0", "Ce-Id": "x", "Ce-Source": "/s", "Ce-Type": typeOK, "Ce-Time": "yesterday"})
	if code, _ := r.get(t, "/"); code != http.StatusMethodNotAllowed {
		t.Errorf("GET / = %d, want 405", code)
	}
	mfs = r.scrape(t)
	for reason, want := range map[string]float64{"method": 1, "not_cloudevent": 2, "malformed": 3} {
		if got := value(t, mfs, "coffeebuddy_events_rejected_total", map[string]string{"reason": reason}); got != want {
			t.Errorf("rejected{reason=%s} = %v, want %v", reason, got, want)
		}
	}
}
