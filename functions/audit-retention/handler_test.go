package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/coffeebuddy/coffeebuddy/shared/audit"
	"github.com/coffeebuddy/coffeebuddy/shared/events"
	"github.com/coffeebuddy/coffeebuddy/shared/functest"
	"github.com/coffeebuddy/coffeebuddy/shared/function"
	"github.com/coffeebuddy/coffeebuddy/shared/postgres/pgtest"
	"github.com/coffeebuddy/coffeebuddy/shared/store"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const (
	day       = 24 * time.Hour
	retention = 90 * day
	source    = "/apis/v1/namespaces/coffeebuddy/pingsources/audit-retention-tick"
)

// tick is the PingSource's event; at is its time attribute (zero: none).
func tick(id string, at time.Time) event.Event {
	e := functest.Event(id, events.TypePing, source, map[string]string{"job": "audit-retention"})
	if !at.IsZero() {
		e.SetTime(at)
	}
	return e
}

// testClock is near the real time, at PostgreSQL's precision, so boundary
// rows sit exactly on the cut-off: the tick's own rows get the database's
// now().
func testClock() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

func newHandler(pool *pgxpool.Pool, clock time.Time, lim audit.Limits) *Handler {
	return New(store.New(pool), Options{Retention: retention, Limits: lim, Now: func() time.Time { return clock.Add(time.Minute) }})
}

// addRow inserts an audit row keyed ceID that occurred at at.
func addRow(t *testing.T, pool *pgxpool.Pool, ceID string, at time.Time) {
	t.Helper()
	if _, err := pool.Exec(context.Background(), `INSERT INTO audit_logs (occurred_at, event_type, ce_id) VALUES ($1, 'order_placed', $2)`, at, ceID); err != nil {
		t.Fatal(err)
	}
}

func exists(t *testing.T, pool *pgxpool.Pool, ceID string) bool {
	t.Helper()
	return functest.Count(t, pool, `SELECT count(*) FROM audit_logs WHERE ce_id = $1`, ceID) > 0
}

// retentionRows returns the details of the audit_retention rows of tick id.
func retentionRows(t *testing.T, pool *pgxpool.Pool, id string) []map[string]any {
	t.Helper()
	rows, _ := pool.Query(context.Background(), `SELECT details FROM audit_logs WHERE event_type = $1 AND ce_id = $2 ORDER BY id`, audit.RetentionDone, id)
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (map[string]any, error) {
		var b []byte
		var d map[string]any
		if err := r.Scan(&b); err != nil {
			return nil, err
		}
		return d, json.Unmarshal(b, &d)
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func processed(t *testing.T, pool *pgxpool.Pool, id string) bool {
	t.Helper()
	return functest.Count(t, pool, `SELECT count(*) FROM processed_events WHERE consumer = $1 AND ce_id = $2`, consumer, id) == 1
}

// TestRetentionBoundaries: at 90 days' retention a row 89 days old stays
// and one 91 days old goes; exactly 90 days is not older than 90 days and
// stays. The tick writes one audit_retention row with the count and the
// cut-off.
func TestRetentionBoundaries(t *testing.T) {
	db := pgtest.New(t)
	clock := testClock()
	rows := []struct {
		key  string
		age  time.Duration
		gone bool
	}{
		{"fresh", time.Hour, false},
		{"89d", 89 * day, false},
		{"90d-1µs", retention - time.Microsecond, false},
		{"90d", retention, false}, // the exact boundary
		{"90d+1µs", retention + time.Microsecond, true},
		{"91d", 91 * day, true},
		{"400d", 400 * day, true},
	}
	for _, r := range rows {
		addRow(t, db.Pool, r.key, clock.Add(-r.age))
	}
	if _, err := newHandler(db.Pool, clock, audit.Limits{Batch: 2}).Handle(context.Background(), tick("tick-1", clock)); err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if got := !exists(t, db.Pool, r.key); got != r.gone {
			t.Errorf("row %s old: gone = %v, want %v", r.key, got, r.gone)
		}
	}
	got := retentionRows(t, db.Pool, "tick-1")
	if len(got) != 1 {
		t.Fatalf("%d audit_retention rows for tick-1, want 1", len(got))
	}
	want := map[string]any{
		"deleted": float64(3), "cut_off": clock.Add(-retention).Format(time.RFC3339Nano),
		"batches": float64(2), "capped": false, "retention": "2160h0m0s", "batch_limit": float64(2),
	}
	for k, v := range want {
		if got[0][k] != v {
			t.Errorf("details[%s] = %v, want %v", k, got[0][k], v)
		}
	}
	if ms, ok := got[0]["took_ms"].(float64); !ok || ms < 0 {
		t.Errorf("details[took_ms] = %v", got[0]["took_ms"])
	}
	if _, ok := got[0]["incomplete"]; ok {
		t.Error("a complete run is marked incomplete")
	}
}

// TestCutOffFollowsTheTick: the cut-off is relative to the tick's time
// (the PingSource's schedule time, the same on every redelivery), a tick
// without a time uses the clock, and a tick from the future never moves
// the cut-off past the clock's.
func TestCutOffFollowsTheTick(t *testing.T) {
	clock := testClock()
	tests := []struct {
		name   string
		at     time.Time
		cutoff time.Time
	}{
		{"tick ten days late", clock.Add(-10 * day), clock.Add(-10*day - retention)},
		{"tick without a time", time.Time{}, clock.Add(time.Minute - retention)},
		{"tick from the future", clock.Add(5 * day), clock.Add(time.Minute - retention)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := pgtest.New(t)
			addRow(t, db.Pool, "just-older", tt.cutoff.Add(-time.Microsecond))
			addRow(t, db.Pool, "exactly", tt.cutoff)
			if _, err := newHandler(db.Pool, clock, audit.DefaultLimits).Handle(context.Background(), tick("t", tt.at)); err != nil {
				t.Fatal(err)
			}
			if exists(t, db.Pool, "just-older") || !exists(t, db.Pool, "exactly") {
				t.Errorf("just-older kept = %v, exactly kept = %v; want false, true",
					exists(t, db.Pool, "just-older"), exists(t, db.Pool, "exactly"))
			}
			if d := retentionRows(t, db.Pool, "t"); len(d) != 1 || d[0]["cut_off"] != tt.cutoff.Format(time.RFC3339Nano) {
				t.Errorf("audit rows %v, want one with cut_off %s", d, tt.cutoff.Format(time.RFC3339Nano))
			}
		})
	}
}

// TestRedeliveredAndOverlappingTicks: a redelivered tick deletes nothing
// more and audits nothing more; a tick arriving while another run holds
// the lock is answered busy (409, the broker retries) and does nothing;
// two copies of a tick at once delete each row once and write one row.
func TestRedeliveredAndOverlappingTicks(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	clock := testClock()
	h := newHandler(db.Pool, clock, audit.Limits{Batch: 2})
	addRow(t, db.Pool, "old", clock.Add(-100*day))
	if _, err := h.Handle(ctx, tick("tick-1", clock)); err != nil {
		t.Fatal(err)
	}

	addRow(t, db.Pool, "late", clock.Add(-100*day)) // expired, but after tick-1 ran
	if _, err := h.Handle(ctx, tick("tick-1", clock)); err != nil {
		t.Fatal(err)
	}
	if !exists(t, db.Pool, "late") {
		t.Error("the redelivered tick-1 deleted a row")
	}
	if n := len(retentionRows(t, db.Pool, "tick-1")); n != 1 {
		t.Errorf("%d audit rows for tick-1 after its redelivery, want 1", n)
	}

	release, ok, err := store.TryRunLock(ctx, db.Pool, consumer) // another run
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	_, err = h.Handle(ctx, tick("tick-2", clock.Add(day)))
	if !function.IsBusy(err) || function.IsPermanent(err) {
		t.Errorf("tick during another run: %v, want a busy (retried) error", err)
	}
	if !exists(t, db.Pool, "late") || processed(t, db.Pool, "tick-2") || len(retentionRows(t, db.Pool, "tick-2")) != 0 {
		t.Error("the tick refused as busy did something")
	}
	release()
	if _, err := h.Handle(ctx, tick("tick-2", clock.Add(day))); err != nil {
		t.Fatal(err)
	}
	if exists(t, db.Pool, "late") {
		t.Error("tick-2's retry kept the expired row")
	}

	// Two copies of tick-3 at once (a redelivery racing the original).
	for i := range 7 {
		addRow(t, db.Pool, fmt.Sprintf("race-%d", i), clock.Add(-95*day))
	}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = h.Handle(ctx, tick("tick-3", clock.Add(2*day)))
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil && !function.IsBusy(err) {
			t.Errorf("copy %d: %v, want success or busy", i, err)
		}
	}
	if errs[0] != nil && errs[1] != nil {
		t.Fatal("both copies were refused")
	}
	d := retentionRows(t, db.Pool, "tick-3")
	if len(d) != 1 || d[0]["deleted"] != float64(7) {
		t.Errorf("tick-3 audit rows %v, want one with deleted 7", d)
	}
}

// TestTouchesOnlyAuditLogs: every other table keeps every row, however old
// (and processed_events gains the tick's own row).
func TestTouchesOnlyAuditLogs(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	clock := testClock()
	old := clock.Add(-400 * day)
	var runID string
	if err := db.Pool.QueryRow(ctx, `INSERT INTO coffee_runs (team_id, channel_id, initiator_user_id, status, last_call_at,
		runner_user_id, completed_at, created_at, updated_at) VALUES ('T1', 'C1', 'U1', 'completed', $1, 'U1', $1, $1, $1) RETURNING id::text`, old).Scan(&runID); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{
		`INSERT INTO users (user_id, team_id, display_name, created_at, updated_at) VALUES ('U1', 'T1', 'ann', $1, $1)`,
		`INSERT INTO orders (run_id, user_id, drink, size, created_at, updated_at) VALUES ('` + runID + `', 'U1', 'latte', 'small', $1, $1)`,
		`INSERT INTO user_preferences (user_id, drink, size, order_count, last_ordered_at) VALUES ('U1', 'latte', 'small', 1, $1)`,
		`INSERT INTO processed_events (consumer, ce_id, processed_at) VALUES ('order-place', 'old', $1)`,
		`INSERT INTO outbox (ce_id, ce_type, ce_source, topic, partition_key, data, created_at, published_at)
			VALUES ('old', 'com.coffeebuddy.run.created', '/s', 'coffee.orders', 'k', '{}', $1, $1)`,
		`INSERT INTO slack_posts (dedup_key, channel_id, claimed_at, first_claimed_at, ts, posted_at) VALUES ('old', 'C1', $1, $1, '1.000100', $1)`,
	} {
		if _, err := db.Pool.Exec(ctx, s, old); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	addRow(t, db.Pool, "expired", old)
	addRow(t, db.Pool, "kept", clock)

	counts := func() map[string]int {
		rows, _ := db.Pool.Query(ctx, `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'`)
		tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil || len(tables) < 8 {
			t.Fatalf("tables %v, %v", tables, err)
		}
		m := map[string]int{}
		for _, tb := range tables {
			m[tb] = functest.Count(t, db.Pool, `SELECT count(*) FROM `+pgx.Identifier{tb}.Sanitize())
		}
		return m
	}
	before := counts()
	if _, err := newHandler(db.Pool, clock, audit.DefaultLimits).Handle(ctx, tick("tick-1", clock)); err != nil {
		t.Fatal(err)
	}
	after := counts()
	for tb, n := range before {
		want := n
		switch tb {
		case "audit_logs":
			want = n - 1 + 1 // the expired row went, the tick's own row came
		case "processed_events":
			want = n + 1
		}
		if after[tb] != want {
			t.Errorf("%s: %d rows before, %d after, want %d", tb, n, after[tb], want)
		}
	}
	if exists(t, db.Pool, "expired") || !exists(t, db.Pool, "kept") {
		t.Error("the audit rows themselves were not handled")
	}
}

// TestCapDrainsOverTicks: with a per-run limit of 3 rows in batches of 2,
// the first tick deletes the 3 oldest and says it was capped; the next
// day's tick deletes the rest.
func TestCapDrainsOverTicks(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	clock := testClock()
	for i := range 5 {
		addRow(t, db.Pool, fmt.Sprintf("old-%d", i), clock.Add(-time.Duration(100+i)*day))
	}
	h := newHandler(db.Pool, clock, audit.Limits{Batch: 2, MaxRows: 3})
	if _, err := h.Handle(ctx, tick("tick-1", clock)); err != nil {
		t.Fatal(err)
	}
	d := retentionRows(t, db.Pool, "tick-1")
	if len(d) != 1 || d[0]["deleted"] != float64(3) || d[0]["batches"] != float64(2) || d[0]["capped"] != true {
		t.Errorf("tick-1 audit %v, want 3 deleted in 2 batches, capped", d)
	}
	for i, want := range []bool{true, true, false, false, false} { // the oldest (old-4, old-3, old-2) went
		if got := exists(t, db.Pool, fmt.Sprintf("old-%d", i)); got != want {
			t.Errorf("old-%d exists = %v, want %v", i, got, want)
		}
	}
	h.opt.Now = func() time.Time { return clock.Add(day + time.Minute) }
	if _, err := h.Handle(ctx, tick("tick-2", clock.Add(day))); err != nil {
		t.Fatal(err)
	}
	d = retentionRows(t, db.Pool, "tick-2")
	if len(d) != 1 || d[0]["deleted"] != float64(2) || d[0]["capped"] != false {
		t.Errorf("tick-2 audit %v, want the other 2 deleted, not capped", d)
	}
}

// TestPartialRunIsAuditedAndRetried: a run that fails after committing
// some batches audits them at once (incomplete, with the error), answers a
// retryable error and leaves the tick unprocessed; the retry deletes the
// rest and writes the tick's own row.
func TestPartialRunIsAuditedAndRetried(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	clock := testClock()
	for i := range 5 {
		addRow(t, db.Pool, fmt.Sprintf("old-%d", i), clock.Add(-100*day))
	}
	h := newHandler(db.Pool, clock, audit.Limits{Batch: 2})
	h.deleteExpired = func(ctx context.Context, q audit.Querier, before time.Time, lim audit.Limits) (audit.Deletion, error) {
		lim.MaxRows = 2
		d, _ := audit.DeleteExpired(ctx, q, before, lim)
		return d, errors.New("connection reset by peer")
	}
	_, err := h.Handle(ctx, tick("tick-1", clock))
	if err == nil || function.IsPermanent(err) || function.IsBusy(err) {
		t.Fatalf("Handle = %v, want a retryable error", err)
	}
	if processed(t, db.Pool, "tick-1") {
		t.Error("the failed tick was recorded as processed")
	}
	d := retentionRows(t, db.Pool, "tick-1")
	if len(d) != 1 || d[0]["deleted"] != float64(2) || d[0]["incomplete"] != true || d[0]["error"] == nil {
		t.Fatalf("audit rows after the failure %v, want one incomplete row for 2 deletions", d)
	}

	h.deleteExpired = audit.DeleteExpired
	if _, err := h.Handle(ctx, tick("tick-1", clock)); err != nil {
		t.Fatal(err)
	}
	d = retentionRows(t, db.Pool, "tick-1")
	if len(d) != 2 || d[1]["deleted"] != float64(3) || d[1]["incomplete"] != nil {
		t.Errorf("audit rows after the retry %v, want the incomplete one and a complete one for 3", d)
	}
	if n := functest.Count(t, db.Pool, `SELECT count(*) FROM audit_logs WHERE ce_id LIKE 'old-%'`); n != 0 {
		t.Errorf("%d expired rows left", n)
	}
}

// TestStoppingEndsTheRun: once the process is stopping (SIGTERM) a run
// starts no batch; the tick is answered with a retryable error so another
// instance does it.
func TestStoppingEndsTheRun(t *testing.T) {
	db := pgtest.New(t)
	clock := testClock()
	addRow(t, db.Pool, "old", clock.Add(-100*day))
	stopping := make(chan struct{})
	close(stopping)
	h := newHandler(db.Pool, clock, audit.DefaultLimits)
	h.opt.Stopping = stopping
	_, err := h.Handle(context.Background(), tick("tick-1", clock))
	if err == nil || function.IsPermanent(err) {
		t.Fatalf("Handle while stopping = %v, want a retryable error", err)
	}
	if !exists(t, db.Pool, "old") || processed(t, db.Pool, "tick-1") {
		t.Error("a stopping run deleted rows or marked the tick processed")
	}
}

func TestHandleRejectsUndecodablePayload(t *testing.T) {
	db := pgtest.New(t)
	e := tick("1", time.Time{})
	_ = e.SetData("application/json", []byte("{not json"))
	if _, err := newHandler(db.Pool, testClock(), audit.DefaultLimits).Handle(context.Background(), e); !function.IsPermanent(err) {
		t.Fatalf("Handle = %v, want a permanent error", err)
	}
	if processed(t, db.Pool, "1") {
		t.Error("a rejected tick was recorded as processed")
	}
}
