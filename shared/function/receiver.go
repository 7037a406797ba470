package function

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the per-function processing metrics.
type metrics struct {
	events   *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newMetrics(name string, reg prometheus.Registerer) *metrics {
	m := &metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name:        "coffeebuddy_events_total",
			Help:        "CloudEvents handled, by type and outcome (ok, retry, permanent).",
			ConstLabels: prometheus.Labels{"function": name},
		}, []string{"type", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:        "coffeebuddy_event_handle_seconds",
			Help:        "Time to handle one CloudEvent.",
			ConstLabels: prometheus.Labels{"function": name},
			Buckets:     []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"type"}),
	}
	reg.MustRegister(m.events, m.duration)
	return m
}

// newReceiver serves CloudEvents (binary or structured mode) on "/" and maps
// the handler's result to statuses the Knative broker understands:
// success 200 (with the reply event, if any), a Permanent error 400 (not
// retried, dead-lettered), any other error 500 (retried with backoff).
// A request that is not a CloudEvent gets 415, a malformed one 400.
//
// It decodes in the request's own goroutine: sdk-go's NewHTTPReceiveHandler
// hands requests over an unbuffered channel shared by all requests, which
// mixes up request contexts and stalls under cancellation
// (cloudevents/sdk-go#1224, #1332).
func newReceiver(_ context.Context, name string, h Handler, log *slog.Logger, reg prometheus.Registerer) (http.Handler, error) {
	m := newMetrics(name, reg)
	handle := func(ctx context.Context, e event.Event) (*event.Event, int, string) {
		start := time.Now()
		log := log.With("ce_id", e.ID(), "ce_type", e.Type(), "ce_source", e.Source())
		if s := e.Subject(); s != "" {
			log = log.With("ce_subject", s)
		}
		ctx = WithLogger(ctx, log)
		reply, err := func() (_ *event.Event, err error) {
			defer func() {
				if p := recover(); p != nil {
					err = fmt.Errorf("handler panicked: %v", p)
				}
			}()
			return h.Handle(ctx, e)
		}()
		m.duration.WithLabelValues(e.Type()).Observe(time.Since(start).Seconds())
		switch {
		case err == nil:
			m.events.WithLabelValues(e.Type(), "ok").Inc()
			log.Debug("handled", "ms", time.Since(start).Milliseconds())
			return reply, http.StatusOK, ""
		case IsPermanent(err):
			m.events.WithLabelValues(e.Type(), "permanent").Inc()
			log.Error("permanent failure; not retried", "err", err)
			return nil, http.StatusBadRequest, err.Error()
		default:
			m.events.WithLabelValues(e.Type(), "retry").Inc()
			log.Warn("failed; the broker will retry", "err", err)
			return nil, http.StatusInternalServerError, err.Error()
		}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "CloudEvents are POSTed", http.StatusMethodNotAllowed)
			return
		}
		ctx := req.Context()
		msg := cehttp.NewMessageFromHttpRequest(req)
		defer func() { _ = msg.Finish(nil) }()
		if msg.ReadEncoding() == binding.EncodingUnknown {
			http.Error(w, "not a CloudEvent", http.StatusUnsupportedMediaType)
			return
		}
		e, err := binding.ToEvent(ctx, msg)
		if err == nil {
			err = e.Validate()
		}
		if err != nil {
			http.Error(w, "malformed CloudEvent: "+err.Error(), http.StatusBadRequest)
			return
		}
		reply, status, text := handle(ctx, *e)
		if reply != nil {
			if err := cehttp.WriteResponseWriter(ctx, binding.ToMessage(reply), status, w); err != nil {
				log.Error("write reply", "ce_id", e.ID(), "err", err)
			}
			return
		}
		if status == http.StatusOK {
			w.WriteHeader(status)
			return
		}
		http.Error(w, text, status)
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
