package slackapi

import (
	"context"
	"net/http"
	"path"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// WithMetrics counts, in reg, every HTTP 429 Slack answers a call with, in
// slack_api_rate_limited_total{method} (method: the Web API method, e.g.
// chat.postMessage). The function runtime passes its registry.
func WithMetrics(reg prometheus.Registerer) Option {
	return func(c *Clients) { c.metricsReg = reg }
}

// RateLimitedMetric is the name of the 429 counter (docs/metrics.md).
const RateLimitedMetric = "slack_api_rate_limited_total"

func newRateLimitedCounter(reg prometheus.Registerer) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: RateLimitedMetric,
		Help: "Slack Web API calls answered HTTP 429 (rate limited), by method.",
	}, []string{"method"})
	if err := reg.Register(c); err != nil {
		if are, ok := err.(prometheus.AlreadyRegisteredError); ok {
			if ex, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
				return ex
			}
		}
		panic(err)
	}
	return c
}

// Method is the Slack Web API method a request calls: the last element of
// its path (".../api/chat.postMessage" → "chat.postMessage").
func Method(req *http.Request) string { return path.Base(req.URL.Path) }

// rateLimitTransport notices 429 answers: it counts them and tells the
// caller's RateLimitNote (when its context carries one) which method was
// rate limited, since slack-go's RateLimitedError does not say.
type rateLimitTransport struct {
	base    http.RoundTripper
	limited *prometheus.CounterVec // nil: not counted
}

func (t *rateLimitTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err == nil && resp.StatusCode == http.StatusTooManyRequests {
		m := Method(req)
		if t.limited != nil {
			t.limited.WithLabelValues(m).Inc()
		}
		if n, ok := req.Context().Value(noteKey{}).(*RateLimitNote); ok {
			n.set(m)
		}
	}
	return resp, err
}

// RateLimitNote records the last Slack method rate limited under a context
// (see WithRateLimitNote).
type RateLimitNote struct {
	mu     sync.Mutex
	method string
}

func (n *RateLimitNote) set(m string) {
	n.mu.Lock()
	n.method = m
	n.mu.Unlock()
}

// Method returns the last method Slack answered 429 to, or "".
func (n *RateLimitNote) Method() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.method
}

type noteKey struct{}

// WithRateLimitNote returns ctx carrying a fresh note: Slack calls made with
// it (through Clients) record there the method of a 429 answer. The
// function runtime uses it to label a buffered retry with the method.
func WithRateLimitNote(ctx context.Context) (context.Context, *RateLimitNote) {
	n := &RateLimitNote{}
	return context.WithValue(ctx, noteKey{}, n), n
}
