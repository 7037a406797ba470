// Package function is the runtime every CoffeeBuddy function shares, so each
// main is a few lines: typed configuration, JSON logs, Prometheus /metrics,
// Knative health endpoints, graceful SIGTERM, the CloudEvents HTTP receiver
// with Knative-friendly status codes, and the dependencies a function asks
// for (PostgreSQL pool, Kafka producer, Slack client), PostgreSQL and Slack
// each behind a circuit breaker (package breaker; metrics in docs/metrics.md).
package function

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/coffeebuddy/coffeebuddy/shared/breaker"
	"github.com/coffeebuddy/coffeebuddy/shared/config"
	"github.com/coffeebuddy/coffeebuddy/shared/kafka"
	"github.com/coffeebuddy/coffeebuddy/shared/postgres/pgpass"
	"github.com/coffeebuddy/coffeebuddy/shared/slackapi"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Handler is a CloudEvent function in the knative/func Go template's shape.
// A returned event is the reply the broker publishes; an error is retried
// unless it is Permanent.
type Handler interface {
	Handle(ctx context.Context, e event.Event) (*event.Event, error)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, e event.Event) (*event.Event, error)

// Handle calls f.
func (f HandlerFunc) Handle(ctx context.Context, e event.Event) (*event.Event, error) {
	return f(ctx, e)
}

// Needs says which dependencies a function uses; only those are connected
// and checked for readiness. Slack implies Kafka: a call Slack rate limits
// is buffered in topic slack.retry.
type Needs struct {
	DB    bool
	Kafka bool
	Slack bool
}

// Deps are a function's connected dependencies.
type Deps struct {
	Name    string
	Config  config.Config
	Log     *slog.Logger
	Metrics *prometheus.Registry
	DB      *pgxpool.Pool     // when Needs.DB
	Kafka   *kgo.Client       // when Needs.Kafka or Needs.Slack (rate-limited calls are buffered in Kafka)
	Slack   *slackapi.Clients // when Needs.Slack
	// Breakers guard DB and Slack (see package breaker): while one is
	// open, calls through it fail at once with an error wrapping
	// breaker.ErrOpen, and the receiver answers events with 503 before
	// calling the handler.
	Breakers Breakers
	// Stopping is closed when the process is asked to stop (SIGTERM),
	// before in-flight requests are drained: a handler that waits (holding
	// a timer until its moment) hands its work back instead of keeping the
	// process alive. Requests' own contexts are not cancelled by SIGTERM.
	Stopping <-chan struct{}
}

// Breakers are the circuit breakers of a function's downstreams; a field is
// nil when the function does not need that downstream.
type Breakers struct {
	Postgres *breaker.Breaker // when Needs.DB
	Slack    *breaker.Breaker // when Needs.Slack
}

// All returns the breakers that are set.
func (b Breakers) All() []*breaker.Breaker {
	var out []*breaker.Breaker
	for _, x := range []*breaker.Breaker{b.Postgres, b.Slack} {
		if x != nil {
			out = append(out, x)
		}
	}
	return out
}

// Err returns the refusal (an *breaker.OpenError wrapping breaker.ErrOpen)
// of the first open breaker, or nil when none is open.
func (b Breakers) Err() error {
	for _, x := range b.All() {
		if err := x.Err(); err != nil {
			return err
		}
	}
	return nil
}

// Spec describes one process. Set Events for a CloudEvent function, or
// Routes for an HTTP service (slack-ingress) that still wants the rest of
// the runtime.
type Spec struct {
	Name   string
	Needs  Needs
	Events func(d *Deps) (Handler, error)
	Routes func(d *Deps) (http.Handler, error)
	// ReadyCheck, optional, joins the readiness probe.
	ReadyCheck func(ctx context.Context) error
	// Breaker tunes the circuit breakers of DB and Slack; the zero value
	// means the defaults (open after 5 consecutive failures, half-open
	// after 30 s).
	Breaker breaker.Settings
}

// Main runs spec with the process environment until SIGTERM/SIGINT and
// exits non-zero on failure.
func Main(spec Spec) {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	ln, err := inheritedListener(os.Getenv)
	if err == nil {
		err = Run(ctx, spec, os.Getenv, os.Stdout, ln)
	}
	if err != nil {
		slog.New(slog.NewJSONHandler(os.Stderr, nil)).Error("exit", "function", spec.Name, "err", err)
		os.Exit(1)
	}
}

// Run is Main for tests: it serves on cfg.Port (or on ln when non-nil) until
// ctx is cancelled, then drains in-flight requests.
func Run(ctx context.Context, spec Spec, getenv func(string) string, logOut io.Writer, ln net.Listener) error {
	started := time.Now()
	cfg, err := config.Load(getenv)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(logOut, &slog.HandlerOptions{Level: cfg.LogLevel})).With("function", spec.Name)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	stopping := make(chan struct{})
	d := &Deps{Name: spec.Name, Config: cfg, Log: log, Metrics: reg, Stopping: stopping}
	bm, err := breaker.NewMetrics(spec.Name, reg)
	if err != nil {
		return fmt.Errorf("function %s: %w", spec.Name, err)
	}
	newBreaker := func(downstream string) *breaker.Breaker {
		return breaker.New(downstream, spec.Breaker, breaker.WithLogger(log), bm.Option())
	}
	if spec.Needs.DB {
		d.Breakers.Postgres = newBreaker("postgres")
	}
	if spec.Needs.Slack {
		d.Breakers.Slack = newBreaker("slack")
	}
	needs := spec.Needs
	if needs.Slack {
		// A call Slack rate limits is buffered in Kafka (slack.retry).
		needs.Kafka = true
	}
	closeDeps, err := connect(ctx, needs, d)
	if err != nil {
		return err
	}
	defer closeDeps()

	var app http.Handler
	switch {
	case spec.Events != nil:
		h, err := spec.Events(d)
		if err != nil {
			return fmt.Errorf("function %s: %w", spec.Name, err)
		}
		var retry *slackRetrier
		if d.Slack != nil && d.Kafka != nil {
			retry = newSlackRetrier(spec.Name, d.Kafka, reg)
		}
		app, err = newReceiver(ctx, spec.Name, h, log, reg, d.Breakers, retry)
		if err != nil {
			return err
		}
	case spec.Routes != nil:
		if app, err = spec.Routes(d); err != nil {
			return fmt.Errorf("function %s: %w", spec.Name, err)
		}
	default:
		return fmt.Errorf("function %s: spec has neither Events nor Routes", spec.Name)
	}

	var ready, draining atomic.Bool
	checks := readinessChecks(spec, d)
	var addr string // set before serving
	markReady := func() {
		if ready.CompareAndSwap(false, true) {
			log.Info("ready", "addr", addr, "start_to_ready_ms", time.Since(started).Milliseconds())
		}
	}
	mux := http.NewServeMux()
	// The liveness answer names the function, so a caller can tell it
	// reached the process it meant to (devstack checks it).
	mux.HandleFunc("GET /health/liveness", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("X-Coffeebuddy-Function", spec.Name)
		w.WriteHeader(http.StatusOK)
	})
	mux.HandleFunc("GET /health/readiness", func(w http.ResponseWriter, r *http.Request) {
		if draining.Load() {
			http.Error(w, "shutting down", http.StatusServiceUnavailable)
			return
		}
		if !ready.Load() {
			if err := runChecks(r.Context(), checks); err != nil {
				http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
				return
			}
			markReady()
		}
		w.WriteHeader(http.StatusOK)
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.Handle("/", app)

	if ln == nil {
		if ln, err = net.Listen("tcp", fmt.Sprintf(":%d", cfg.Port)); err != nil {
			return fmt.Errorf("function %s: listen: %w", spec.Name, err)
		}
	}
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	addr = ln.Addr().String()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	// Become ready as soon as dependencies answer, without waiting for the
	// first probe, so start-to-ready is measurable from the logs.
	go func() {
		for ctx.Err() == nil && !ready.Load() {
			cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			err := runChecks(cctx, checks)
			cancel()
			if err == nil {
				markReady()
				return
			}
			log.Warn("dependencies not ready", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(500 * time.Millisecond):
			}
		}
	}()

	select {
	case err := <-errc:
		return fmt.Errorf("function %s: serve: %w", spec.Name, err)
	case <-ctx.Done():
	}
	// SIGTERM: stop advertising readiness, finish in-flight events, exit.
	draining.Store(true)
	close(stopping)
	log.Info("shutting down", "timeout", cfg.ShutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("function %s: shutdown: %w", spec.Name, err)
	}
	log.Info("stopped")
	return nil
}

func connect(ctx context.Context, needs Needs, d *Deps) (_ func(), err error) {
	var closers []func()
	closeAll := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	defer func() {
		if err != nil {
			closeAll()
		}
	}()
	if needs.DB {
		if d.Config.DatabaseURL == "" {
			return nil, errors.New("DATABASE_URL is required (make run provides an embedded database)")
		}
		// Lazy: pgxpool connects on first use, so a database that is still
		// starting does not stop the process; readiness reports it.
		pcfg, err := pgxpool.ParseConfig(d.Config.DatabaseURL)
		if err != nil {
			return nil, fmt.Errorf("DATABASE_URL: %w", err) // pgx redacts the password
		}
		pcfg.MaxConns = d.Config.DatabaseMaxConns
		// Vault rotates the role's password and rewrites PGPASSFILE: new
		// connections read it again.
		pgpass.ReadOnConnect(pcfg, d.Config.DatabaseURL, d.Config.DatabasePassFile)
		if d.Breakers.Postgres != nil {
			breaker.InstrumentPool(pcfg, d.Breakers.Postgres)
		}
		d.DB, err = pgxpool.NewWithConfig(ctx, pcfg)
		if err != nil {
			return nil, fmt.Errorf("postgres pool: %w", err)
		}
		closers = append(closers, d.DB.Close)
	}
	if needs.Kafka {
		if len(d.Config.KafkaBrokers) == 0 {
			return nil, errors.New("KAFKA_BROKERS is required (make run provides an embedded cluster); " +
				"functions that use Slack need it too, for slack.retry")
		}
		d.Kafka, err = kafka.NewClient(d.Config.KafkaBrokers, d.Log, d.Metrics)
		if err != nil {
			return nil, err
		}
		closers = append(closers, d.Kafka.Close)
	}
	if needs.Slack {
		opts := []slackapi.Option{slackapi.WithMetrics(d.Metrics)}
		if d.Breakers.Slack != nil {
			opts = append(opts, slackapi.WithBreaker(d.Breakers.Slack))
		}
		d.Slack = slackapi.NewClients(d.Config.SlackBotToken, d.Config.SlackAPIURL, opts...)
	}
	return closeAll, nil
}

type check func(context.Context) error

func readinessChecks(spec Spec, d *Deps) []check {
	var cs []check
	if d.DB != nil {
		cs = append(cs, func(ctx context.Context) error {
			if err := d.DB.Ping(ctx); err != nil {
				return fmt.Errorf("postgres: %w", err)
			}
			return nil
		})
	}
	if d.Kafka != nil {
		cs = append(cs, func(ctx context.Context) error { return kafka.Ping(ctx, d.Kafka) })
	}
	if spec.ReadyCheck != nil {
		cs = append(cs, spec.ReadyCheck)
	}
	return cs
}

func runChecks(ctx context.Context, cs []check) error {
	for _, c := range cs {
		if err := c(ctx); err != nil {
			return err
		}
	}
	return nil
}
