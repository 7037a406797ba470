package auditquery_test

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coffeebuddy/coffeebuddy/shared/auditquery"
	"github.com/coffeebuddy/coffeebuddy/shared/postgres/pgtest"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// planRows is the seeded table: 1,000 rows a day over 120 days, shaped
// like production (a few teams of very different sizes, 200 channels,
// 2,000 users, a run every ~20 rows, order events dominating, system events
// without actor, team or channel). The planner sees the same proportions as
// at 10 million rows; the benchmark measures the time.
const planDays, planPerDay = 120, 1000

// TestQueryPlansUseIndexes explains every query shape the API sends, as it
// sends them (planned with their values: QueryExecModeCacheDescribe), over a
// 90-day range of 120 days of data, and fails on a Seq Scan of audit_logs or
// a plan that reads the table without an index.
func TestQueryPlansUseIndexes(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	ctx := context.Background()
	end := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	first := end.Add(-planDays * 24 * time.Hour)
	if _, err := db.Pool.Exec(ctx, `
		INSERT INTO audit_logs (occurred_at, event_type, actor_user_id, team_id, channel_id, run_id, ce_id, details)
		SELECT $1::timestamptz + i * ($2::interval / $3),
		       CASE WHEN i % 100 = 0 THEN 'housekeeping_done'
		            WHEN i % 100 < 55 THEN 'order_placed'
		            WHEN i % 100 < 65 THEN 'order_updated'
		            WHEN i % 100 < 72 THEN 'run_created'
		            WHEN i % 100 < 79 THEN 'run_closed'
		            WHEN i % 100 < 86 THEN 'runner_dmed'
		            WHEN i % 100 < 93 THEN 'run_completed'
		            WHEN i % 100 < 97 THEN 'last_call_warned'
		            WHEN i % 100 < 99 THEN 'run_cancelled'
		            ELSE 'volunteer_set' END,
		       CASE WHEN i % 100 = 0 THEN NULL ELSE 'U' || (hashint4(i) & 2047) END,
		       CASE WHEN i % 100 = 0 THEN NULL WHEN i % 20 < 14 THEN 'T1' WHEN i % 20 < 19 THEN 'T2' ELSE 'T3' END,
		       CASE WHEN i % 100 = 0 THEN NULL ELSE 'C' || ((i / 20) % 200) END,
		       CASE WHEN i % 100 = 0 THEN NULL ELSE md5('run' || (i / 20))::uuid END,
		       'ce-' || i, '{"k": 1}'
		FROM generate_series(0, $3 - 1) AS i`,
		first, time.Duration(planDays)*24*time.Hour, planDays*planPerDay); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, `ANALYZE audit_logs`); err != nil {
		t.Fatal(err)
	}
	var runID uuid.UUID
	if err := db.Pool.QueryRow(ctx, `SELECT run_id FROM audit_logs WHERE run_id IS NOT NULL ORDER BY id OFFSET 50000 LIMIT 1`).Scan(&runID); err != nil {
		t.Fatal(err)
	}
	start := end.Add(-90 * 24 * time.Hour)
	mid := &auditquery.Position{OccurredAt: start.Add(45 * 24 * time.Hour), ID: 60000}
	f := func(edit func(*auditquery.Filter)) auditquery.Filter {
		x := auditquery.Filter{Start: start, End: end}
		if edit != nil {
			edit(&x)
		}
		return x
	}
	shapes := []struct {
		name   string
		filter auditquery.Filter
		after  *auditquery.Position
		limit  int
	}{
		{"no filter, first page", f(nil), nil, 101},
		{"no filter, page after a cursor", f(nil), mid, 101},
		{"no filter, max page", f(nil), mid, 1001},
		{"export batch", f(nil), mid, auditquery.ExportBatch},
		{"common event type", f(func(x *auditquery.Filter) { x.EventTypes = []string{"order_placed"} }), mid, 101},
		{"rare event type", f(func(x *auditquery.Filter) { x.EventTypes = []string{"housekeeping_done"} }), nil, 101},
		{"rare event type after a cursor", f(func(x *auditquery.Filter) { x.EventTypes = []string{"volunteer_set"} }), mid, 101},
		{"two event types", f(func(x *auditquery.Filter) { x.EventTypes = []string{"run_cancelled", "volunteer_set"} }), nil, 101},
		{"user", f(func(x *auditquery.Filter) { x.UserID = "U42" }), nil, 101},
		{"user after a cursor", f(func(x *auditquery.Filter) { x.UserID = "U42" }), mid, 101},
		{"unknown user", f(func(x *auditquery.Filter) { x.UserID = "' OR 1=1 --" }), nil, 101},
		{"channel", f(func(x *auditquery.Filter) { x.ChannelID = "C7" }), mid, 101},
		{"small team", f(func(x *auditquery.Filter) { x.TeamID = "T3" }), nil, 101},
		{"big team", f(func(x *auditquery.Filter) { x.TeamID = "T1" }), mid, 101},
		{"run", f(func(x *auditquery.Filter) { x.RunID = runID }), nil, 101},
		{"user and event type", f(func(x *auditquery.Filter) { x.UserID, x.EventTypes = "U42", []string{"order_placed"} }), nil, 101},
		{"channel, team and event types", f(func(x *auditquery.Filter) {
			x.ChannelID, x.TeamID, x.EventTypes = "C7", "T1", []string{"run_created", "run_closed"}
		}), nil, 101},
		{"user export", f(func(x *auditquery.Filter) { x.UserID = "U42" }), nil, auditquery.ExportBatch},
	}
	seqScan := regexp.MustCompile(`Seq Scan on audit_logs`)
	indexed := regexp.MustCompile(`(Index|Index Only|Bitmap Index) Scan (Backward )?(using|on) audit_logs_`)
	for _, s := range shapes {
		sql, args := auditquery.Statement(s.filter, s.after, s.limit)
		rows, _ := db.Pool.Query(ctx, "EXPLAIN (ANALYZE, BUFFERS) "+sql, append([]any{pgx.QueryExecModeCacheDescribe}, args...)...)
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		plan := strings.Join(lines, "\n")
		t.Logf("%s:\n%s", s.name, plan)
		if m := seqScan.FindString(plan); m != "" {
			t.Errorf("%s: %s", s.name, m)
		}
		if !indexed.MatchString(plan) {
			t.Errorf("%s: no index scan of audit_logs", s.name)
		}
	}
}
