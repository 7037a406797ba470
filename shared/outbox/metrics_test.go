package outbox_test

import (
	"context"
	"log/slog"
	"testing"

	"github.com/coffeebuddy/coffeebuddy/shared/kafka/kafkatest"
	"github.com/coffeebuddy/coffeebuddy/shared/outbox"
	"github.com/coffeebuddy/coffeebuddy/shared/postgres/pgtest"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// gauge reads one gauge of c.
func gauge(t *testing.T, c prometheus.Collector, name string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("%s not exported", name)
	return 0
}

// TestBacklogMetrics: the backlog gauges follow the table: zero when all is
// published, the count and the oldest row's age when rows wait, back to
// zero once they are published.
func TestBacklogMetrics(t *testing.T) {
	db, kc := pgtest.New(t), kafkatest.New(t)
	ctx := context.Background()
	m := outbox.NewMetrics(db.Pool, slog.New(slog.DiscardHandler))
	if n := gauge(t, m, outbox.UnpublishedMetric); n != 0 {
		t.Fatalf("empty outbox: unpublished = %v", n)
	}
	if age := gauge(t, m, outbox.OldestAgeMetric); age != 0 {
		t.Fatalf("empty outbox: oldest age = %v, want 0", age)
	}

	enqueue(t, db, "run-1")
	enqueue(t, db, "run-2")
	// The oldest has been waiting ten minutes (a relay that never ran).
	if _, err := db.Pool.Exec(ctx, `UPDATE outbox SET created_at = now() - interval '10 minutes' WHERE partition_key = 'run-1'`); err != nil {
		t.Fatal(err)
	}
	if n := gauge(t, m, outbox.UnpublishedMetric); n != 2 {
		t.Errorf("unpublished = %v, want 2", n)
	}
	if age := gauge(t, m, outbox.OldestAgeMetric); age < 600 || age > 660 {
		t.Errorf("oldest age = %v s, want about 600", age)
	}

	if _, err := newRelay(t, db, kc).Sweep(ctx, 0, 10); err != nil {
		t.Fatal(err)
	}
	if n := gauge(t, m, outbox.UnpublishedMetric); n != 0 {
		t.Errorf("after the sweep: unpublished = %v", n)
	}
	if age := gauge(t, m, outbox.OldestAgeMetric); age != 0 {
		t.Errorf("after the sweep: oldest age = %v", age)
	}
}

// TestBacklogMetricsDatabaseDown: a failed read exports nothing rather
// than failing the scrape or exporting a stale zero.
func TestBacklogMetricsDatabaseDown(t *testing.T) {
	db := pgtest.New(t)
	m := outbox.NewMetrics(db.Pool, slog.New(slog.DiscardHandler))
	db.Pool.Close()
	if n := testutil.CollectAndCount(m); n != 0 {
		t.Fatalf("%d series exported with the database closed, want 0", n)
	}
}
