package breaker

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics exports the state and transitions of a function's breakers:
//
//	coffeebuddy_breaker_state{function,downstream}                  gauge: 0 closed, 1 half-open, 2 open
//	coffeebuddy_breaker_transitions_total{function,downstream,from,to} counter
//
// The state is read at scrape time, so an open breaker whose open period
// has passed shows (and logs, and counts) half-open without waiting for
// traffic.
type Metrics struct {
	function    string
	state       *prometheus.Desc
	transitions *prometheus.CounterVec

	mu       sync.Mutex
	breakers []*Breaker
}

// NewMetrics registers the breaker metrics of function on reg.
func NewMetrics(function string, reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		function: function,
		state: prometheus.NewDesc("coffeebuddy_breaker_state",
			"Circuit breaker state per downstream: 0 closed, 1 half-open, 2 open.",
			[]string{"downstream"}, prometheus.Labels{"function": function}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name:        "coffeebuddy_breaker_transitions_total",
			Help:        "Circuit breaker state changes per downstream.",
			ConstLabels: prometheus.Labels{"function": function},
		}, []string{"downstream", "from", "to"}),
	}
	if err := reg.Register(m); err != nil {
		return nil, err
	}
	return m, nil
}

// Option returns the New option that exports a breaker through m.
func (m *Metrics) Option() Option {
	return func(b *Breaker) {
		m.mu.Lock()
		m.breakers = append(m.breakers, b)
		m.mu.Unlock()
		// The possible transitions start at zero, so rate() and alerts
		// work from the first scrape.
		for _, t := range [][2]State{{Closed, Open}, {Open, HalfOpen}, {HalfOpen, Closed}, {HalfOpen, Open}} {
			m.transitions.WithLabelValues(b.downstream, t[0].String(), t[1].String())
		}
		b.listeners = append(b.listeners, func(t Transition) {
			m.transitions.WithLabelValues(t.Downstream, t.From.String(), t.To.String()).Inc()
		})
	}
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- m.state
	m.transitions.Describe(ch)
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	m.mu.Lock()
	bs := append([]*Breaker(nil), m.breakers...)
	m.mu.Unlock()
	for _, b := range bs {
		// State first: it may record a transition, which the counter
		// below then includes.
		ch <- prometheus.MustNewConstMetric(m.state, prometheus.GaugeValue, float64(b.State()), b.downstream)
	}
	m.transitions.Collect(ch)
}
