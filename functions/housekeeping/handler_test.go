package main

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/coffeebuddy/coffeebuddy/shared/events"
	"github.com/coffeebuddy/coffeebuddy/shared/functest"
	"github.com/coffeebuddy/coffeebuddy/shared/function"
	"github.com/coffeebuddy/coffeebuddy/shared/postgres/pgtest"
	"github.com/coffeebuddy/coffeebuddy/shared/store"
	"github.com/jackc/pgx/v5/pgxpool"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const day = 24 * time.Hour

func tick(id string) event.Event {
	return functest.Event(id, events.TypePing, "/apis/v1/namespaces/coffeebuddy/pingsources/housekeeping-tick", map[string]string{"job": "housekeeping"})
}

// testClock is near the real time (at PostgreSQL's precision, so the
// boundary rows sit exactly on the cut-off): the tick's own processed_events
// row gets the database's now(), which must not look expired to the clock.
func testClock() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

// row is one seeded bookkeeping row: its table, key, age relative to the
// clock (of the timestamp retention looks at), whether that timestamp is set
// at all (published/posted) and whether it must survive the tick.
type row struct {
	table   string
	key     string
	age     time.Duration
	pending bool // outbox: never published; slack_posts: claim never posted
	kept    bool
}

var seed = []row{
	{"processed_events", "pe-fresh", time.Hour, false, true},
	{"processed_events", "pe-29d", 29 * day, false, true},
	{"processed_events", "pe-30d", 30 * day, false, true}, // exactly 30 days: not older
	{"processed_events", "pe-30d+1s", 30*day + time.Second, false, false},
	{"processed_events", "pe-400d", 400 * day, false, false},

	{"outbox", "ob-fresh", time.Minute, false, true},
	{"outbox", "ob-6d", 6 * day, false, true},
	{"outbox", "ob-7d", 7 * day, false, true},
	{"outbox", "ob-7d+1s", 7*day + time.Second, false, false},
	{"outbox", "ob-90d", 90 * day, false, false},
	{"outbox", "ob-unpublished-new", time.Minute, true, true},
	{"outbox", "ob-unpublished-old", 400 * day, true, true},

	{"slack_posts", "sp-fresh", time.Minute, false, true},
	{"slack_posts", "sp-29d", 29 * day, false, true},
	{"slack_posts", "sp-30d", 30 * day, false, true},
	{"slack_posts", "sp-30d+1s", 30*day + time.Second, false, false},
	{"slack_posts", "sp-200d", 200 * day, false, false},
	{"slack_posts", "sp-claim-new", time.Minute, true, true},
	{"slack_posts", "sp-claim-old", 400 * day, true, true},
}

// insert seeds r with its timestamp at clock - r.age. An outbox row was
// created (and a claim first made) an hour before that.
func insert(t *testing.T, pool *pgxpool.Pool, clock time.Time, r row) {
	t.Helper()
	ctx := context.Background()
	at := clock.Add(-r.age)
	var err error
	switch r.table {
	case "processed_events":
		_, err = pool.Exec(ctx, `INSERT INTO processed_events (consumer, ce_id, processed_at) VALUES ('order-place', $1, $2)`, r.key, at)
	case "outbox":
		var published *time.Time
		if !r.pending {
			published = &at
		}
		_, err = pool.Exec(ctx, `INSERT INTO outbox (ce_id, ce_type, ce_source, topic, partition_key, data, created_at, published_at)
			VALUES ($1, $2, '/coffeebuddy/run-start', $3, 'run-1', '{}', $4, $5)`,
			r.key, events.TypeRunCreated, events.TopicOrders, at.Add(-time.Hour), published)
	case "slack_posts":
		var ts *string
		var posted *time.Time
		if !r.pending {
			s := fmt.Sprintf("%d.000100", at.Unix())
			ts, posted = &s, &at
		}
		_, err = pool.Exec(ctx, `INSERT INTO slack_posts (dedup_key, channel_id, claimed_at, first_claimed_at, ts, posted_at)
			VALUES ($1, 'C1', $2, $2, $3, $4)`, r.key, at.Add(-time.Hour), ts, posted)
	}
	if err != nil {
		t.Fatalf("seed %s %s: %v", r.table, r.key, err)
	}
}

func exists(t *testing.T, pool *pgxpool.Pool, r row) bool {
	t.Helper()
	q := map[string]string{
		"processed_events": `SELECT count(*) FROM processed_events WHERE ce_id = $1`,
		"outbox":           `SELECT count(*) FROM outbox WHERE ce_id = $1`,
		"slack_posts":      `SELECT count(*) FROM slack_posts WHERE dedup_key = $1`,
	}[r.table]
	return functest.Count(t, pool, q, r.key) == 1
}

// audits returns the housekeeping_done audit rows' details for tick id.
func audits(t *testing.T, pool *pgxpool.Pool, id string) []map[string]any {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT details FROM audit_logs WHERE event_type = 'housekeeping_done' AND ce_id = $1`, id)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []map[string]any
	for rows.Next() {
		var b []byte
		var d map[string]any
		if err := rows.Scan(&b); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatal(err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestDeletesOnlyExpiredRows seeds every table on both sides of its cut-off,
// plus pending rows of any age, and checks exactly the expired ones go, with
// one audit row carrying the counts and cut-offs; a redelivered tick deletes
// nothing more and audits nothing more.
func TestDeletesOnlyExpiredRows(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	clock := testClock()
	for _, r := range seed {
		insert(t, db.Pool, clock, r)
	}
	h := New(store.New(db.Pool), func() time.Time { return clock }, 0)
	if _, err := h.Handle(ctx, tick("tick-1")); err != nil {
		t.Fatal(err)
	}
	for _, r := range seed {
		if got := exists(t, db.Pool, r); got != r.kept {
			t.Errorf("%s %s (%v old, pending %v): kept = %v, want %v", r.table, r.key, r.age, r.pending, got, r.kept)
		}
	}
	got := audits(t, db.Pool, "tick-1")
	if len(got) != 1 {
		t.Fatalf("%d housekeeping_done audit rows for tick-1, want 1", len(got))
	}
	want := map[string]any{
		"processed_events_deleted": float64(2), "processed_events_before": clock.Add(-30 * day).Format(time.RFC3339Nano),
		"outbox_deleted": float64(2), "outbox_before": clock.Add(-7 * day).Format(time.RFC3339Nano),
		"slack_posts_deleted": float64(2), "slack_posts_before": clock.Add(-30 * day).Format(time.RFC3339Nano),
		"batch_limit": float64(DefaultBatch),
	}
	for k, v := range want {
		if got[0][k] != v {
			t.Errorf("audit details[%s] = %v, want %v", k, got[0][k], v)
		}
	}

	// A redelivery of the same tick: rows that expire meanwhile (seeded now)
	// stay, and no second audit row appears.
	late := row{"processed_events", "pe-late", 100 * day, false, true}
	insert(t, db.Pool, clock, late)
	if _, err := h.Handle(ctx, tick("tick-1")); err != nil {
		t.Fatal(err)
	}
	if !exists(t, db.Pool, late) {
		t.Error("the redelivered tick deleted a row")
	}
	if n := len(audits(t, db.Pool, "tick-1")); n != 1 {
		t.Errorf("%d audit rows after the redelivery, want 1", n)
	}

	// The next day's tick deletes that one, and its own run keeps the
	// earlier tick's dedup row (it is fresh).
	if _, err := h.Handle(ctx, tick("tick-2")); err != nil {
		t.Fatal(err)
	}
	if exists(t, db.Pool, late) {
		t.Error("tick-2 kept an expired row")
	}
	if d := audits(t, db.Pool, "tick-2"); len(d) != 1 || d[0]["processed_events_deleted"] != float64(1) || d[0]["outbox_deleted"] != float64(0) {
		t.Errorf("tick-2 audit = %v, want one row with 1 processed event and 0 outbox rows deleted", d)
	}
	if !exists(t, db.Pool, row{table: "processed_events", key: "tick-1"}) {
		t.Error("the housekeeping tick's own dedup row was deleted")
	}
}

// TestBatchLimitDrainsOverTicks: with a batch of 2, each tick deletes the
// two oldest expired rows per table and the next tick continues.
func TestBatchLimitDrainsOverTicks(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	clock := testClock()
	var old []row
	for i := range 3 {
		r := row{"slack_posts", fmt.Sprintf("sp-old-%d", i), (40 + time.Duration(i)) * day, false, false}
		old = append(old, r)
		insert(t, db.Pool, clock, r)
	}
	h := New(store.New(db.Pool), func() time.Time { return clock }, 2)
	if _, err := h.Handle(ctx, tick("tick-1")); err != nil {
		t.Fatal(err)
	}
	// The oldest two (42 and 41 days) went; 40 days is left for tomorrow.
	for i, want := range []bool{true, false, false} {
		if got := exists(t, db.Pool, old[i]); got != want {
			t.Errorf("after tick-1: %s exists = %v, want %v", old[i].key, got, want)
		}
	}
	if _, err := h.Handle(ctx, tick("tick-2")); err != nil {
		t.Fatal(err)
	}
	if exists(t, db.Pool, old[0]) {
		t.Error("tick-2 did not delete the rest")
	}
	if d := audits(t, db.Pool, "tick-2"); len(d) != 1 || d[0]["slack_posts_deleted"] != float64(1) || d[0]["batch_limit"] != float64(2) {
		t.Errorf("tick-2 audit = %v", d)
	}
}

func TestHandleRejectsUndecodablePayload(t *testing.T) {
	db := pgtest.New(t)
	e := tick("1")
	_ = e.SetData("application/json", []byte("{not json"))
	if _, err := New(store.New(db.Pool), time.Now, 0).Handle(context.Background(), e); !function.IsPermanent(err) {
		t.Fatalf("Handle = %v, want a permanent error", err)
	}
	if n := functest.Count(t, db.Pool, `SELECT count(*) FROM processed_events WHERE consumer = 'housekeeping'`); n != 0 {
		t.Errorf("a rejected tick was recorded as processed (%d rows)", n)
	}
}
