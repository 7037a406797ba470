package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/coffeebuddy/coffeebuddy/shared/gauges"
	"github.com/coffeebuddy/coffeebuddy/shared/store"
	"github.com/prometheus/client_golang/prometheus"
)

// Metric names (docs/metrics.md).
const (
	OverdueRunsMetric   = "coffeebuddy_runs_past_last_call"
	OldestOverdueMetric = "coffeebuddy_runs_oldest_past_last_call_seconds"
)

// NewOverdueMetrics returns the collector of runs still taking orders
// after their last call, read from the database at scrape time (package
// gauges), not on the tick: when the ticks themselves stop, which is when
// runs get stuck, the gauges still tell.
//
//	coffeebuddy_runs_past_last_call                 active runs whose last call has passed
//	coffeebuddy_runs_oldest_past_last_call_seconds  how long ago the earliest of those last calls was; 0 when none
//
// run-timer closes a run at its last call and run-tick within the minute,
// so a run overdue for minutes is stuck (alert CoffeeBuddyRunStuckPastLastCall).
func NewOverdueMetrics(q store.Querier, now func() time.Time, log *slog.Logger) prometheus.Collector {
	runs := prometheus.NewDesc(OverdueRunsMetric,
		"Active coffee runs whose last call has passed (not closed yet).", nil, nil)
	oldest := prometheus.NewDesc(OldestOverdueMetric,
		"How long past its last call the most overdue active run is (0 when none).", nil, nil)
	return gauges.New("overdue runs", log, func(ctx context.Context) ([]prometheus.Metric, error) {
		o, err := store.OverdueRuns(ctx, q, now())
		if err != nil {
			return nil, err
		}
		return []prometheus.Metric{
			prometheus.MustNewConstMetric(runs, prometheus.GaugeValue, float64(o.Runs)),
			prometheus.MustNewConstMetric(oldest, prometheus.GaugeValue, o.Oldest.Seconds()),
		}, nil
	}, runs, oldest)
}
