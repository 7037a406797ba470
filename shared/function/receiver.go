package function

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/protocol"
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
// Malformed requests get sdk-go's 400/415.
func newReceiver(ctx context.Context, name string, h Handler, log *slog.Logger, reg prometheus.Registerer) (http.Handler, error) {
	m := newMetrics(name, reg)
	p, err := cloudevents.NewHTTP()
	if err != nil {
		return nil, fmt.Errorf("cloudevents http: %w", err)
	}
	fn := func(ctx context.Context, e event.Event) (*event.Event, protocol.Result) {
		start := time.Now()
		log := log.With("ce_id", e.ID(), "ce_type", e.Type(), "ce_source", e.Source())
		if s := e.Subject(); s != "" {
			log = log.With("ce_subject", s)
		}
		ctx = WithLogger(ctx, log)
		reply, err := h.Handle(ctx, e)
		m.duration.WithLabelValues(e.Type()).Observe(time.Since(start).Seconds())
		switch {
		case err == nil:
			m.events.WithLabelValues(e.Type(), "ok").Inc()
			log.Debug("handled", "ms", time.Since(start).Milliseconds())
			return reply, cehttp.NewResult(http.StatusOK, "")
		case IsPermanent(err):
			m.events.WithLabelValues(e.Type(), "permanent").Inc()
			log.Error("permanent failure; not retried", "err", err)
			return nil, cehttp.NewResult(http.StatusBadRequest, "%s", err.Error())
		default:
			m.events.WithLabelValues(e.Type(), "retry").Inc()
			log.Warn("failed; the broker will retry", "err", err)
			return nil, cehttp.NewResult(http.StatusInternalServerError, "%s", err.Error())
		}
	}
	return cloudevents.NewHTTPReceiveHandler(ctx, p, fn)
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
