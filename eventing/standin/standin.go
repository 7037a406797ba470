// Package standin is CoffeeBuddy's local stand-in for Knative Eventing: it
// reads the same manifests as the cluster (eventing/*.yaml: KafkaSource,
// Broker, Triggers, KafkaSink, PingSource) and delivers CloudEvents over HTTP
// to the functions with Knative's semantics — Trigger attribute filters,
// per-Trigger consumer groups, ordered or unordered per-partition delivery
// (the Trigger's delivery.order annotation), in-order commits after success,
// retry with linear or exponential backoff, dead-lettering with the
// knativeerror* extensions, and reply events published back to the broker.
//
// It is a development tool, never the production path: in a cluster the
// Knative Kafka Broker does all of this. See eventing/README.md and
// docs/adr/0003-eventing-standin.md for what it does and does not mirror.
package standin

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coffeebuddy/coffeebuddy/shared/kafka"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Config configures a StandIn.
type Config struct {
	// Dir holds the manifests (eventing/ in the repository).
	Dir string
	// Brokers are the Kafka brokers the KafkaSources read from, replacing
	// the manifests' bootstrapServers (which name the cluster's Kafka).
	Brokers []string
	// Resolve maps a subscriber or sink ref ("Service", "run-start") to a
	// URL such as http://127.0.0.1:PORT. It is called for every delivery,
	// so routes may appear after the stand-in started.
	Resolve func(kind, name string) (url string, err error)
	// Logger receives structured logs; nil discards them.
	Logger *slog.Logger
	// ReloadInterval is how often Dir is polled for changes (default 1s).
	ReloadInterval time.Duration
	// Now is the clock for event times (default time.Now).
	Now func() time.Time
	// HTTPClient delivers events (default: a client without a global
	// timeout; each attempt is bounded by delivery.timeout, else 1 minute).
	HTTPClient *http.Client
	// OnReload, if set, is called after every reload attempt triggered by
	// a change in Dir: with nil once the new routing is live (consumers
	// joined), or with the error that kept the previous routing running.
	OnReload func(error)
	// Copies injects duplicate delivery, for fault-injection runs: every
	// attempt to deliver an event to a subscriber is sent this many times
	// at once (0 or 1: once). See SetCopies.
	Copies int
	// UnorderedMaxInFlight bounds how many records of one partition an
	// unordered Trigger has in flight at once (default
	// DefaultUnorderedMaxInFlight).
	UnorderedMaxInFlight int
}

// StandIn runs the local eventing data plane.
type StandIn struct {
	cfg      Config
	log      *slog.Logger
	http     *http.Client
	producer *kgo.Client

	mu      sync.Mutex
	m       *Manifests
	fp      string // fingerprint of the files m was loaded from
	cur     *generation
	running bool

	ready     chan struct{}
	readyOnce sync.Once

	copies     atomic.Int64 // see Config.Copies
	copiesSent atomic.Int64
	shuffle    atomic.Int64 // see SetShuffle: the longest delay, in ns
	shuffled   atomic.Int64

	// settled, if set (by tests, before Run), is called once an unordered
	// consumer is done with a delivered record and has committed what
	// that allows.
	settled func(topic string, partition int32, offset int64)
}

// New loads cfg.Dir and prepares a stand-in; Run starts it.
func New(cfg Config) (*StandIn, error) {
	if cfg.Dir == "" {
		return nil, errors.New("standin: Config.Dir is required")
	}
	if cfg.ReloadInterval <= 0 {
		cfg.ReloadInterval = time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.UnorderedMaxInFlight <= 0 {
		cfg.UnorderedMaxInFlight = DefaultUnorderedMaxInFlight
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{}
	}
	// Fingerprint before loading: an edit racing with Load is then seen
	// as a change by Run's first poll.
	fp, err := fingerprint(cfg.Dir)
	if err != nil {
		return nil, err
	}
	m, err := Load(cfg.Dir)
	if err != nil {
		return nil, err
	}
	producer, err := kafka.NewClient(cfg.Brokers, kafkaLogger(log.With(slog.String("component", "standin-producer"))), nil)
	if err != nil {
		return nil, fmt.Errorf("standin: %w", err)
	}
	si := &StandIn{
		cfg: cfg, log: log, http: hc, producer: producer,
		m: m, fp: fp, ready: make(chan struct{}),
	}
	si.SetCopies(cfg.Copies)
	return si, nil
}

// Ready is closed once the first routing is live: every Trigger's consumer
// group has joined and been assigned its partitions, and the PingSource
// schedules run.
func (s *StandIn) Ready() <-chan struct{} { return s.ready }

// Manifests returns the manifests currently in effect.
func (s *StandIn) Manifests() *Manifests {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m
}

func (s *StandIn) now() time.Time { return s.cfg.Now() }

// Run delivers events until ctx is done, reloading the manifests when Dir
// changes. On the way out it lets in-flight deliveries finish (no new
// retries start), commits what was delivered or dead-lettered, leaves the
// consumer groups and closes its Kafka clients. A StandIn runs once.
func (s *StandIn) Run(ctx context.Context) error {
	s.mu.Lock()
	if s.running {
		s.mu.Unlock()
		return errors.New("standin: Run called twice")
	}
	s.running = true
	m, fp := s.m, s.fp
	s.mu.Unlock()
	defer s.producer.Close()

	g := s.start(m)
	s.setCurrent(g)
	go func() {
		select {
		case <-g.ready:
			s.readyOnce.Do(func() { close(s.ready) })
		case <-g.stopped:
		}
	}()

	tick := time.NewTicker(s.cfg.ReloadInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			s.current().stop()
			s.log.Info("stand-in stopped")
			return nil
		case <-tick.C:
		}
		nfp, err := fingerprint(s.cfg.Dir)
		if err != nil || nfp == fp {
			if err != nil {
				s.log.Error("cannot read manifests", slog.String("error", err.Error()))
			}
			continue
		}
		fp = nfp
		nm, err := Load(s.cfg.Dir)
		if err != nil {
			s.log.Error("manifests changed but do not load; keeping the previous routing", slog.String("error", err.Error()))
			s.notify(err)
			continue
		}
		s.log.Info("manifests changed; restarting routing", slog.String("dir", s.cfg.Dir))
		s.current().stop()
		s.mu.Lock()
		s.m = nm
		s.mu.Unlock()
		g := s.start(nm)
		s.setCurrent(g)
		select {
		case <-g.ready:
			s.readyOnce.Do(func() { close(s.ready) })
			s.notify(nil)
		case <-ctx.Done():
		}
	}
}

func (s *StandIn) notify(err error) {
	if s.cfg.OnReload != nil {
		s.cfg.OnReload(err)
	}
}

func (s *StandIn) setCurrent(g *generation) {
	s.mu.Lock()
	s.cur = g
	s.mu.Unlock()
}

func (s *StandIn) current() *generation {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur
}

// FirePing emits one event from the PingSource called name now, as its
// schedule would, and returns once every matching Trigger has had it
// (delivered, dead-lettered or dropped). ctx bounds the retries.
func (s *StandIn) FirePing(ctx context.Context, name string) error {
	s.mu.Lock()
	m := s.m
	s.mu.Unlock()
	p, err := m.PingSource(name)
	if err != nil {
		return err
	}
	return s.ping(ctx, m, p)
}

// fingerprint summarises the manifest files' names, sizes, mtimes and
// contents, so any edit (or rename, or removal) changes it.
func fingerprint(dir string) (string, error) {
	files, err := manifestFiles(dir)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	for _, f := range files {
		st, err := os.Stat(f)
		if err != nil {
			return "", fmt.Errorf("standin: %w", err)
		}
		b, err := os.ReadFile(f)
		if err != nil {
			return "", fmt.Errorf("standin: %w", err)
		}
		sum := sha256.Sum256(b)
		fmt.Fprintf(h, "%s\x00%d\x00%d\x00%x\n", f, st.Size(), st.ModTime().UnixNano(), sum)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// kafkaLogger keeps franz-go's protocol-level debug logs out of the
// stand-in's log even when it runs at debug level.
func kafkaLogger(l *slog.Logger) *slog.Logger {
	return slog.New(minLevel{Handler: l.Handler(), min: slog.LevelInfo})
}

type minLevel struct {
	slog.Handler
	min slog.Level
}

func (h minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h minLevel) WithAttrs(as []slog.Attr) slog.Handler {
	return minLevel{Handler: h.Handler.WithAttrs(as), min: h.min}
}

func (h minLevel) WithGroup(name string) slog.Handler {
	return minLevel{Handler: h.Handler.WithGroup(name), min: h.min}
}
