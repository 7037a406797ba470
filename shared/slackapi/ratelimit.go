package slackapi

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"path"
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// WithMetrics counts, in reg, every HTTP 429 Slack answers a call with, in
// slack_api_rate_limited_total{method} (method: the Web API method, e.g.
// chat.postMessage, or "response_url"), and every refusal in
// slack_api_errors_total{method,error}. The function runtime passes its
// registry.
func WithMetrics(reg prometheus.Registerer) Option {
	return func(c *Clients) { c.metricsReg = reg }
}

// Metric names (docs/metrics.md).
const (
	RateLimitedMetric = "slack_api_rate_limited_total"
	ErrorsMetric      = "slack_api_errors_total"
)

func newRateLimitedCounter(reg prometheus.Registerer) *prometheus.CounterVec {
	return registerCounter(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: RateLimitedMetric,
		Help: "Slack Web API calls answered HTTP 429 (rate limited), by method.",
	}, []string{"method"}))
}

func newErrorsCounter(reg prometheus.Registerer) *prometheus.CounterVec {
	return registerCounter(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: ErrorsMetric,
		Help: "Slack calls Slack refused, by method and Slack's error code (ok:false answers and " +
			"response_url refusals; other non-2xx statuses but 429 as http_<status>).",
	}, []string{"method", "error"}))
}

// registerCounter registers c, or returns the counter already registered
// under its name (several Clients may share one registry).
func registerCounter(reg prometheus.Registerer, c *prometheus.CounterVec) *prometheus.CounterVec {
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

// MethodResponseURL labels calls to a response_url in the metrics.
const MethodResponseURL = "response_url"

type methodKey struct{}

// Method is the Slack method a request calls: the last element of its path
// (".../api/chat.postMessage" → "chat.postMessage"), or MethodResponseURL
// for a post to a response_url.
func Method(req *http.Request) string {
	if m, ok := req.Context().Value(methodKey{}).(string); ok {
		return m
	}
	return path.Base(req.URL.Path)
}

// rateLimitTransport notices 429 answers and refusals: it counts them and
// tells the caller's RateLimitNote (when its context carries one) which
// method was rate limited, since slack-go's RateLimitedError does not say.
type rateLimitTransport struct {
	base    http.RoundTripper
	limited *prometheus.CounterVec // nil: not counted
	errors  *prometheus.CounterVec // nil: not counted
}

func (t *rateLimitTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	switch m := Method(req); {
	case resp.StatusCode == http.StatusTooManyRequests:
		if t.limited != nil {
			t.limited.WithLabelValues(m).Inc()
		}
		if n, ok := req.Context().Value(noteKey{}).(*RateLimitNote); ok {
			n.set(m)
		}
	case t.errors != nil:
		if code := refusal(resp); code != "" {
			t.errors.WithLabelValues(m, code).Inc()
		}
	}
	return resp, nil
}

// peekSize is enough of an answer to read Slack's {"ok":false,"error":…}.
const peekSize = 512

// refusal returns the error code of an answer that refuses the call ("" for
// success), reading no more of the body than it leaves for the caller: the
// body is replaced by one that still yields every byte.
func refusal(resp *http.Response) string {
	br := bufio.NewReaderSize(resp.Body, peekSize)
	resp.Body = struct {
		io.Reader
		io.Closer
	}{br, resp.Body}
	head, _ := br.Peek(peekSize)
	if code := errorField(head); code != "" && !bytes.Contains(head, []byte(`"ok":true`)) {
		return code
	}
	if resp.StatusCode/100 != 2 {
		return "http_" + strconv.Itoa(resp.StatusCode)
	}
	return ""
}

// errorField extracts the value of the first "error":"…" in a JSON head, or
// "" when there is none. Slack's codes are short snake_case words, so a
// scan is enough and costs no decode of large answers.
func errorField(head []byte) string {
	const key = `"error":"`
	i := bytes.Index(head, []byte(key))
	if i < 0 {
		return ""
	}
	rest := head[i+len(key):]
	j := bytes.IndexByte(rest, '"')
	if j <= 0 || j > 64 {
		return ""
	}
	return string(rest[:j])
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
