// Package gauges exports values read from a store (PostgreSQL, Kafka) when
// Prometheus scrapes, rather than when a tick last ran: a gauge set on a
// tick freezes at its last value when the ticks stop, which is exactly
// when an alert on it is needed (the outbox backlog while the sweeper is
// broken, runs past last call while run-tick is). The read is bounded by a
// timeout, and a failed read exports nothing for that scrape (the series
// goes stale) instead of failing the whole /metrics answer: the breaker
// and error metrics of the same scrape say why.
package gauges

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// DefaultTimeout bounds one read: well inside Prometheus's default scrape
// timeout (10 s).
const DefaultTimeout = 3 * time.Second

// Read returns the current metrics, made with prometheus.MustNewConstMetric
// from the Collector's descriptions.
type Read func(ctx context.Context) ([]prometheus.Metric, error)

// Collector is a prometheus.Collector that reads its values at scrape time.
type Collector struct {
	name    string
	descs   []*prometheus.Desc
	read    Read
	log     *slog.Logger
	timeout time.Duration
}

// New returns a collector called name (for its log lines) exporting descs
// through read.
func New(name string, log *slog.Logger, read Read, descs ...*prometheus.Desc) *Collector {
	return &Collector{name: name, descs: descs, read: read, log: log, timeout: DefaultTimeout}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	ms, err := c.read(ctx)
	if err != nil {
		c.log.Warn("metrics read failed; not exported this scrape", "gauges", c.name, "err", err)
		return
	}
	for _, m := range ms {
		ch <- m
	}
}
