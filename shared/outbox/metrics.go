package outbox

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/coffeebuddy/coffeebuddy/shared/gauges"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
)

// Metric names (docs/metrics.md).
const (
	UnpublishedMetric = "coffeebuddy_outbox_unpublished"
	OldestAgeMetric   = "coffeebuddy_outbox_oldest_unpublished_age_seconds"
)

// Querier is the part of a pgx pool the metrics read with.
type Querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// NewMetrics returns the collector of the outbox backlog, read from the
// table at scrape time (package gauges):
//
//	coffeebuddy_outbox_unpublished                     rows not yet published
//	coffeebuddy_outbox_oldest_unpublished_age_seconds  age of the oldest of them; 0 when there is none
//
// The relay publishes right after commit and outbox-sweep every minute, so
// an age of minutes means both are failing (Kafka unreachable, the sweeper
// not ticking).
func NewMetrics(db Querier, log *slog.Logger) prometheus.Collector {
	unpublished := prometheus.NewDesc(UnpublishedMetric,
		"Outbox rows not yet published to Kafka.", nil, nil)
	age := prometheus.NewDesc(OldestAgeMetric,
		"Age of the oldest outbox row not yet published (0 when none).", nil, nil)
	return gauges.New("outbox", log, func(ctx context.Context) ([]prometheus.Metric, error) {
		var n int64
		var oldest float64
		// The partial index outbox_unpublished holds exactly these rows.
		err := db.QueryRow(ctx, `SELECT count(*), COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0)::float8
			FROM outbox WHERE published_at IS NULL`).Scan(&n, &oldest)
		if err != nil {
			return nil, fmt.Errorf("outbox backlog: %w", err)
		}
		return []prometheus.Metric{
			prometheus.MustNewConstMetric(unpublished, prometheus.GaugeValue, float64(n)),
			prometheus.MustNewConstMetric(age, prometheus.GaugeValue, max(0, oldest)),
		}, nil
	}, unpublished, age)
}
