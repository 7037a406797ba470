package main

import (
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func overdueGauges(t *testing.T, c prometheus.Collector) (runs, oldest float64) {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		got[mf.GetName()] = mf.GetMetric()[0].GetGauge().GetValue()
	}
	if len(got) != 2 {
		t.Fatalf("exported %v, want both gauges", got)
	}
	return got[OverdueRunsMetric], got[OldestOverdueMetric]
}

// TestOverdueMetrics: the gauges count the active runs past last call and
// how far past the earliest is, at the moment of the scrape; a closed run
// and one still before its last call do not count, and a tick that closes
// the overdue run brings them back to 0.
func TestOverdueMetrics(t *testing.T) {
	r := newRig(t)
	now := clock
	c := NewOverdueMetrics(r.db.Pool, func() time.Time { return now }, slog.New(slog.DiscardHandler))
	if runs, oldest := overdueGauges(t, c); runs != 0 || oldest != 0 {
		t.Fatalf("no runs: %v overdue, oldest %v s; want 0, 0", runs, oldest)
	}

	r.start("C1", "U1", clock.Add(-7*time.Minute)) // stuck 7 minutes
	r.start("C2", "U2", clock.Add(-90*time.Second))
	r.start("C3", "U3", clock.Add(5*time.Minute)) // still ordering
	if runs, oldest := overdueGauges(t, c); runs != 2 || oldest != 420 {
		t.Fatalf("%v overdue, oldest %v s; want 2, 420", runs, oldest)
	}
	// Read at scrape time: a minute later it is a minute older.
	now = clock.Add(time.Minute)
	if _, oldest := overdueGauges(t, c); oldest != 480 {
		t.Fatalf("a minute later: oldest %v s, want 480", oldest)
	}

	r.tick(r.handler(now), "tick-1", now)
	if runs, oldest := overdueGauges(t, c); runs != 0 || oldest != 0 {
		t.Fatalf("after the tick closed them: %v overdue, oldest %v s; want 0, 0", runs, oldest)
	}
}
