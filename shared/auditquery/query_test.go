package auditquery_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coffeebuddy/coffeebuddy/shared/auditquery"
	"github.com/coffeebuddy/coffeebuddy/shared/postgres/pgtest"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

type seedRow struct {
	at                       time.Time
	typ, user, team, channel string
	run                      uuid.UUID
	details                  string
}

func insert(t *testing.T, pool *pgxpool.Pool, rows ...seedRow) {
	t.Helper()
	for _, r := range rows {
		var run *uuid.UUID
		if r.run != uuid.Nil {
			run = &r.run
		}
		d := r.details
		if d == "" {
			d = "{}"
		}
		if _, err := pool.Exec(context.Background(), `
			INSERT INTO audit_logs (occurred_at, event_type, actor_user_id, team_id, channel_id, run_id, ce_id, details)
			VALUES ($1, $2, NULLIF($3, ''), NULLIF($4, ''), NULLIF($5, ''), $6, 'ce', $7::jsonb)`,
			r.at, r.typ, r.user, r.team, r.channel, run, d); err != nil {
			t.Fatal(err)
		}
	}
}

func ids(rs []auditquery.Row) []int64 {
	var out []int64
	for _, r := range rs {
		out = append(out, r.ID)
	}
	return out
}

// walk pages through f with page size n and returns every row id seen.
func walk(t *testing.T, pool *pgxpool.Pool, f auditquery.Filter, n int, between func()) []int64 {
	t.Helper()
	var all []int64
	var after *auditquery.Position
	for pages := 0; ; pages++ {
		if pages > 1000 {
			t.Fatal("no end of pages")
		}
		rs, more, err := auditquery.Page(context.Background(), pool, f, after, n)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, ids(rs)...)
		if !more {
			return all
		}
		p := rs[len(rs)-1].Position()
		after = &p
		if between != nil {
			between()
		}
	}
}

// TestKeysetPagesAreStable: paging in (occurred_at, id) order returns every
// row of the range once, in order, with ties on occurred_at split across
// pages correctly, while new rows keep arriving: rows arriving during the
// walk neither shift the pages nor repeat a row.
func TestKeysetPagesAreStable(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	ctx := context.Background()
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var seed []seedRow
	for i := range 25 {
		// Groups of 4 rows share a timestamp, so pages end mid-tie.
		seed = append(seed, seedRow{at: base.Add(time.Duration(i/4) * time.Second), typ: "order_placed", user: "U1", team: "T1", channel: "C1"})
	}
	seed = append(seed,
		seedRow{at: base.Add(-time.Second), typ: "order_placed"},                // before the range
		seedRow{at: base.Add(time.Hour), typ: "order_placed"},                   // at end: excluded (half-open)
		seedRow{at: base.Add(time.Hour - time.Microsecond), typ: "run_created"}, // last µs inside
	)
	insert(t, db.Pool, seed...)
	f := auditquery.Filter{Start: base, End: base.Add(time.Hour)}

	var want []int64
	rows, _ := db.Pool.Query(ctx, `SELECT id FROM audit_logs WHERE occurred_at >= $1 AND occurred_at < $2 ORDER BY occurred_at, id`, f.Start, f.End)
	want, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		t.Fatal(err)
	}
	if len(want) != 26 {
		t.Fatalf("seeded %d rows in range, want 26", len(want))
	}
	for _, n := range []int{1, 3, 4, 7, 26, 100} {
		if got := walk(t, db.Pool, f, n, nil); !slices.Equal(got, want) {
			t.Errorf("page size %d: %v, want %v", n, got, want)
		}
	}

	// Rows arrive while a client pages: some after the client's position
	// (they belong to later pages), some outside the range. Nothing already
	// served moves, nothing repeats, everything before the arrivals is seen.
	arrivals := 0
	got := walk(t, db.Pool, f, 5, func() {
		arrivals++
		insert(t, db.Pool,
			seedRow{at: base.Add(30 * time.Minute).Add(time.Duration(arrivals) * time.Millisecond), typ: "order_updated"},
			seedRow{at: base.Add(2 * time.Hour), typ: "order_updated"})
	})
	seen := map[int64]bool{}
	for _, id := range got {
		if seen[id] {
			t.Fatalf("row %d served twice", id)
		}
		seen[id] = true
	}
	for _, id := range want {
		if !seen[id] {
			t.Errorf("row %d, present before the walk, was skipped", id)
		}
	}
	if len(got) != len(want)+arrivals {
		t.Errorf("served %d rows, want %d existing + %d that arrived inside the range after the position", len(got), len(want), arrivals)
	}
}

func TestFiltersAndRowShape(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	base := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	run := uuid.New()
	insert(t, db.Pool,
		seedRow{at: base.Add(1 * time.Minute), typ: "run_created", user: "U1", team: "T1", channel: "C1", run: run, details: `{"last_call_at": "2026-03-01T00:11:00Z", "n": 1.50, "nested": {"b": [1, "x"]}}`},
		seedRow{at: base.Add(2 * time.Minute), typ: "order_placed", user: "U2", team: "T1", channel: "C1", run: run},
		seedRow{at: base.Add(3 * time.Minute), typ: "order_placed", user: "U1", team: "T2", channel: "C2", run: uuid.New()},
		seedRow{at: base.Add(4 * time.Minute), typ: "housekeeping_done"},
	)
	all := auditquery.Filter{Start: base, End: base.Add(time.Hour)}
	with := func(edit func(*auditquery.Filter)) auditquery.Filter {
		f := all
		edit(&f)
		return f
	}
	tests := []struct {
		name   string
		filter auditquery.Filter
		want   int // rows
	}{
		{"everything", all, 4},
		{"one event type", with(func(f *auditquery.Filter) { f.EventTypes = []string{"order_placed"} }), 2},
		{"two event types", with(func(f *auditquery.Filter) { f.EventTypes = []string{"order_placed", "run_created"} }), 3},
		{"user", with(func(f *auditquery.Filter) { f.UserID = "U1" }), 2},
		{"run", with(func(f *auditquery.Filter) { f.RunID = run }), 2},
		{"channel", with(func(f *auditquery.Filter) { f.ChannelID = "C2" }), 1},
		{"team", with(func(f *auditquery.Filter) { f.TeamID = "T1" }), 2},
		{"all together", with(func(f *auditquery.Filter) {
			f.EventTypes, f.UserID, f.RunID, f.ChannelID, f.TeamID = []string{"run_created"}, "U1", run, "C1", "T1"
		}), 1},
		{"range start is inclusive", with(func(f *auditquery.Filter) { f.Start = base.Add(2 * time.Minute) }), 3},
		{"range end is exclusive", with(func(f *auditquery.Filter) { f.End = base.Add(2 * time.Minute) }), 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs, more, err := auditquery.Page(context.Background(), db.Pool, tt.filter, nil, 100)
			if err != nil || more || len(rs) != tt.want {
				t.Fatalf("Page = %d rows (more %v), %v; want %d", len(rs), more, err, tt.want)
			}
		})
	}

	rs, _, err := auditquery.Page(context.Background(), db.Pool, with(func(f *auditquery.Filter) { f.EventTypes = []string{"run_created"} }), nil, 1)
	if err != nil || len(rs) != 1 {
		t.Fatal(rs, err)
	}
	b, _ := json.Marshal(rs[0])
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{
		"occurred_at": "2026-03-01T00:01:00Z", "event_type": "run_created", "user_id": "U1",
		"team_id": "T1", "channel_id": "C1", "run_id": run.String(), "ce_id": "ce",
	} {
		if got[k] != want {
			t.Errorf("%s = %v, want %v", k, got[k], want)
		}
	}
	// details is the stored JSONB verbatim (as PostgreSQL renders jsonb).
	if d := string(rs[0].Details); d != `{"n": 1.50, "nested": {"b": [1, "x"]}, "last_call_at": "2026-03-01T00:11:00Z"}` {
		t.Errorf("details = %s", d)
	}
	rs, _, _ = auditquery.Page(context.Background(), db.Pool, with(func(f *auditquery.Filter) { f.EventTypes = []string{"housekeeping_done"} }), nil, 1)
	b, _ = json.Marshal(rs[0])
	if !strings.Contains(string(b), `"user_id":null,"team_id":null,"channel_id":null,"run_id":null`) {
		t.Errorf("system row = %s, want nulls for absent columns", b)
	}
}

// TestInjectionStringsAreValues: every filter is a parameter, so SQL in a
// value matches nothing and changes nothing.
func TestInjectionStringsAreValues(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	base := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	insert(t, db.Pool, seedRow{at: base, typ: "order_placed", user: "U1", team: "T1", channel: "C1"})
	for _, inj := range []string{
		`' OR '1'='1`, `U1' --`, `U1'; DELETE FROM audit_logs; --`, `"; DROP TABLE audit_logs; --`,
		`\'; SELECT pg_sleep(5); --`, `U1%`, `$1`, "U1\x00", `') OR true OR ('`,
	} {
		for _, f := range []auditquery.Filter{
			{Start: base, End: base.Add(time.Hour), UserID: inj},
			{Start: base, End: base.Add(time.Hour), ChannelID: inj},
			{Start: base, End: base.Add(time.Hour), TeamID: inj},
		} {
			rs, _, err := auditquery.Page(context.Background(), db.Pool, f, nil, 10)
			if strings.Contains(inj, "\x00") {
				// PostgreSQL text cannot hold NUL: refused as a value, never run.
				if err == nil {
					t.Errorf("%q: accepted a NUL byte", inj)
				}
				continue
			}
			if err != nil || len(rs) != 0 {
				t.Errorf("%q: %d rows, %v; want 0 rows", inj, len(rs), err)
			}
		}
	}
	var n int
	if err := db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM audit_logs`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("audit_logs has %d rows (%v) after the injection attempts, want 1", n, err)
	}
}

func TestStreamExportsEveryRowInOrder(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	ctx := context.Background()
	base := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	// More than two export batches, with a tie straddling each boundary.
	n := 2*auditquery.ExportBatch + 17
	if _, err := db.Pool.Exec(ctx, `
		INSERT INTO audit_logs (occurred_at, event_type, team_id)
		SELECT $1::timestamptz + (i / 3) * interval '1 ms', 'order_placed', 'T1' FROM generate_series(1, $2) AS i`, base, n); err != nil {
		t.Fatal(err)
	}
	f := auditquery.Filter{Start: base, End: base.Add(time.Hour)}
	var prev auditquery.Position
	got, err := auditquery.Stream(ctx, db.Pool, f, nil, func(r *auditquery.Row) error {
		p := r.Position()
		if p.OccurredAt.Before(prev.OccurredAt) || (p.OccurredAt.Equal(prev.OccurredAt) && p.ID <= prev.ID) {
			return fmt.Errorf("row %d out of order after %d", p.ID, prev.ID)
		}
		prev = p
		return nil
	})
	if err != nil || got != int64(n) {
		t.Fatalf("Stream = %d, %v; want %d", got, err, n)
	}
	// A failing consumer stops the export and reports what it took.
	stop := fmt.Errorf("client went away")
	got, err = auditquery.Stream(ctx, db.Pool, f, nil, func(r *auditquery.Row) error {
		if r.ID%100 == 0 {
			return stop
		}
		return nil
	})
	if err != stop || got >= int64(n) {
		t.Fatalf("Stream with a failing consumer = %d, %v", got, err)
	}
}
