package function

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/coffeebuddy/coffeebuddy/shared/breaker"
	"github.com/coffeebuddy/coffeebuddy/shared/slackapi"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the per-function processing metrics (docs/metrics.md).
type metrics struct {
	events   *prometheus.CounterVec
	duration *prometheus.HistogramVec
	latency  *prometheus.HistogramVec
	rejected *prometheus.CounterVec
}

// Outcomes of coffeebuddy_events_total.
const (
	outcomeOK          = "ok"          // handled; 200
	outcomeRetry       = "retry"       // failed; 500, the broker retries
	outcomePermanent   = "permanent"   // failed for good; 400, dead-lettered
	outcomeUnavailable = "unavailable" // a downstream's breaker is open; 503
	outcomeSlackRetry  = "slack_retry" // Slack rate limited; buffered in slack.retry (or dead-lettered), 200
)

// Reasons of coffeebuddy_events_rejected_total.
const (
	rejectMethod    = "method"         // not a POST: 405
	rejectNotCE     = "not_cloudevent" // no CloudEvent encoding: 415
	rejectMalformed = "malformed"      // a CloudEvent that fails to decode or validate: 400
)

func newMetrics(name string, reg prometheus.Registerer) *metrics {
	fn := prometheus.Labels{"function": name}
	m := &metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name:        "coffeebuddy_events_total",
			Help:        "CloudEvents handled, by type and outcome (ok, retry, permanent, unavailable, slack_retry).",
			ConstLabels: fn,
		}, []string{"type", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:        "coffeebuddy_event_handle_seconds",
			Help:        "Time to handle one CloudEvent.",
			ConstLabels: fn,
			Buckets:     []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"type"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "coffeebuddy_event_latency_seconds",
			Help: "From the CloudEvent's time attribute to done here (handled, or failed permanently), " +
				"retries included; events without a time are not observed.",
			ConstLabels: fn,
			Buckets:     []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600},
		}, []string{"type"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name:        "coffeebuddy_events_rejected_total",
			Help:        "Requests refused before any handling because they are not well-formed CloudEvents (answered 4xx).",
			ConstLabels: fn,
		}, []string{"reason"}),
	}
	for _, r := range []string{rejectMethod, rejectNotCE, rejectMalformed} {
		m.rejected.WithLabelValues(r)
	}
	reg.MustRegister(m.events, m.duration, m.latency, m.rejected)
	return m
}

// result is the HTTP answer to one event.
type result struct {
	reply      *event.Event
	status     int
	text       string
	retryAfter string // Retry-After header, when set
}

// newReceiver serves CloudEvents (binary or structured mode) on "/" and maps
// the handler's result to statuses the Knative broker understands:
// success 200 (with the reply event, if any), a Permanent error 400 (not
// retried, dead-lettered), any other error 500 (retried with backoff).
// While a breaker of the function's downstreams is open it answers 503 with
// Retry-After without calling the handler, and so it does when the
// handler's error wraps breaker.ErrOpen: the broker backs off and retries.
// A request that is not a CloudEvent gets 415, a malformed one 400.
// When retry is set (the function uses Slack) and the handler's error wraps
// *slack.RateLimitedError, the event is buffered in slack.retry (see
// slackretry.go) and answered 200, or 500 if that fails.
//
// It decodes in the request's own goroutine: sdk-go's NewHTTPReceiveHandler
// hands requests over an unbuffered channel shared by all requests, which
// mixes up request contexts and stalls under cancellation
// (cloudevents/sdk-go#1224, #1332).
func newReceiver(_ context.Context, name string, h Handler, log *slog.Logger, reg prometheus.Registerer, breakers Breakers, retry *slackRetrier) (http.Handler, error) {
	m := newMetrics(name, reg)
	unavailable := func(e event.Event, log *slog.Logger, err error) result {
		m.events.WithLabelValues(e.Type(), outcomeUnavailable).Inc()
		retryAfter := strconv.Itoa(int(breaker.DefaultHalfOpenAfter / time.Second))
		var oe *breaker.OpenError
		if errors.As(err, &oe) {
			retryAfter = oe.RetryAfterSeconds()
		}
		log.Warn("downstream unavailable; the broker will retry later", "err", err, "retry_after_s", retryAfter)
		return result{status: http.StatusServiceUnavailable, text: err.Error() + "; retry later", retryAfter: retryAfter}
	}
	handle := func(ctx context.Context, e event.Event) result {
		start := time.Now()
		log := log.With("ce_id", e.ID(), "ce_type", e.Type(), "ce_source", e.Source())
		if s := e.Subject(); s != "" {
			log = log.With("ce_subject", s)
		}
		// A downstream known to be down: refuse before the handler starts
		// anything it could not finish.
		if err := breakers.Err(); err != nil {
			return unavailable(e, log, err)
		}
		ctx = WithLogger(ctx, log)
		ctx, note := slackapi.WithRateLimitNote(ctx)
		reply, err := func() (_ *event.Event, err error) {
			defer func() {
				if p := recover(); p != nil {
					err = fmt.Errorf("handler panicked: %v", p)
				}
			}()
			return h.Handle(ctx, e)
		}()
		done := time.Now()
		m.duration.WithLabelValues(e.Type()).Observe(done.Sub(start).Seconds())
		observeLatency := func() {
			if t := e.Time(); !t.IsZero() {
				m.latency.WithLabelValues(e.Type()).Observe(max(0, done.Sub(t).Seconds()))
			}
		}
		switch {
		case err == nil:
			m.events.WithLabelValues(e.Type(), outcomeOK).Inc()
			observeLatency()
			log.Debug("handled", "ms", done.Sub(start).Milliseconds())
			return result{reply: reply, status: http.StatusOK}
		case errors.Is(err, breaker.ErrOpen):
			return unavailable(e, log, err)
		case retry != nil && isRateLimited(err):
			m.events.WithLabelValues(e.Type(), outcomeSlackRetry).Inc()
			rl, _ := rateLimited(err)
			return retry.buffer(ctx, e, rl, note.Method(), err)
		case IsPermanent(err):
			m.events.WithLabelValues(e.Type(), outcomePermanent).Inc()
			observeLatency()
			log.Error("permanent failure; not retried", "err", err)
			return result{status: http.StatusBadRequest, text: err.Error()}
		case IsBusy(err):
			m.events.WithLabelValues(e.Type(), outcomeRetry).Inc()
			log.Info("another attempt holds this work; the broker will retry", "err", err)
			return result{status: http.StatusConflict, text: err.Error()}
		default:
			m.events.WithLabelValues(e.Type(), outcomeRetry).Inc()
			log.Warn("failed; the broker will retry", "err", err)
			return result{status: http.StatusInternalServerError, text: err.Error()}
		}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodPost {
			m.rejected.WithLabelValues(rejectMethod).Inc()
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "CloudEvents are POSTed", http.StatusMethodNotAllowed)
			return
		}
		ctx := req.Context()
		msg := cehttp.NewMessageFromHttpRequest(req)
		defer func() { _ = msg.Finish(nil) }()
		if msg.ReadEncoding() == binding.EncodingUnknown {
			m.rejected.WithLabelValues(rejectNotCE).Inc()
			http.Error(w, "not a CloudEvent", http.StatusUnsupportedMediaType)
			return
		}
		e, err := binding.ToEvent(ctx, msg)
		if err == nil {
			err = e.Validate()
		}
		if err != nil {
			m.rejected.WithLabelValues(rejectMalformed).Inc()
			http.Error(w, "malformed CloudEvent: "+err.Error(), http.StatusBadRequest)
			return
		}
		res := handle(ctx, *e)
		if res.reply != nil {
			if err := cehttp.WriteResponseWriter(ctx, binding.ToMessage(res.reply), res.status, w); err != nil {
				log.Error("write reply", "ce_id", e.ID(), "err", err)
			}
			return
		}
		if res.status == http.StatusOK {
			w.WriteHeader(res.status)
			return
		}
		if res.retryAfter != "" {
			w.Header().Set("Retry-After", res.retryAfter)
		}
		http.Error(w, res.text, res.status)
	}), nil
}

type loggerKey struct{}

// WithLogger returns ctx carrying log, so domain code logs with the event's
// ce_id/ce_type attributes without a global logger.
func WithLogger(ctx context.Context, log *slog.Logger) context.Context {
	return context.WithValue(ctx, loggerKey{}, log)
}

// Logger returns the logger carried by ctx, or a discarding one.
func Logger(ctx context.Context) *slog.Logger {
	if l, ok := ctx.Value(loggerKey{}).(*slog.Logger); ok {
		return l
	}
	return slog.New(slog.DiscardHandler)
}
