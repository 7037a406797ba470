package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// auditSeed fills the migrated audit_logs with c.Rows rows spread evenly
// over c.Days days up to now, in id order as the app writes them (ids
// ascend with time, old rows at the start of the heap). It loads without
// the indexes and rebuilds them from their own definitions, so the table
// ends up with exactly the migrations' indexes, whatever they are. The shape
// of a row: 1% system rows (housekeeping_done: no actor, team, channel or
// run, as the partial indexes expect); a rare event type (run_cancelled,
// 0.1%); otherwise 9 event types (order_placed 29%, the others 9.9% each);
// 10,000 actors of very different activity (actor rank k has about
// 1/(200·√k) of the rows: the busiest has 1%, the median about 0.007%),
// 50 teams, 1,000 channels (each in one team), a run per 12 consecutive
// rows, a CloudEvent id, small JSON details.
func auditSeed(ctx context.Context, conn *pgx.Conn, c auditConfig, start time.Time) (steps []seedStep, err error) {
	step := func(name string, rows int64, fn func() error) error {
		began := time.Now()
		if err := fn(); err != nil {
			return fmt.Errorf("seed audit: %s: %w", name, err)
		}
		steps = append(steps, seedStep{Name: name, Took: time.Since(began), Rows: rows})
		c.logf("seeded %s in %s", name, time.Since(began).Round(time.Millisecond))
		return nil
	}
	exec := func(sql string, args ...any) func() error {
		return func() error { _, err := conn.Exec(ctx, sql, args...); return err }
	}
	for _, s := range []string{"SET maintenance_work_mem = '512MB'", "SET synchronous_commit = off"} {
		if _, err := conn.Exec(ctx, s); err != nil {
			return nil, err
		}
	}
	// The indexes and constraints as migrated, to drop now and rebuild after.
	type def struct{ name, constraint, sql string }
	readDefs := func() ([]def, error) {
		rows, _ := conn.Query(ctx, `
			SELECT i.indexrelid::regclass::text, coalesce(c.conname, ''),
				coalesce('ALTER TABLE audit_logs ADD CONSTRAINT ' || quote_ident(c.conname) || ' ' || pg_get_constraintdef(c.oid), pg_get_indexdef(i.indexrelid))
			FROM pg_index i LEFT JOIN pg_constraint c ON c.conindid = i.indexrelid AND c.conrelid = i.indrelid
			WHERE i.indrelid = 'audit_logs'::regclass ORDER BY 1`)
		return pgx.CollectRows(rows, func(r pgx.CollectableRow) (def, error) {
			var d def
			return d, r.Scan(&d.name, &d.constraint, &d.sql)
		})
	}
	defs, err := readDefs()
	if err != nil {
		return nil, fmt.Errorf("seed audit: read indexes: %w", err)
	}
	if err := step("drop indexes for the load", -1, func() error {
		for _, d := range defs {
			sql := "DROP INDEX " + d.name
			if d.constraint != "" {
				sql = "ALTER TABLE audit_logs DROP CONSTRAINT " + pgx.Identifier{d.constraint}.Sanitize()
			}
			if _, err := conn.Exec(ctx, sql); err != nil {
				return err
			}
		}
		_, err := conn.Exec(ctx, "ALTER TABLE audit_logs SET (autovacuum_enabled = off)")
		return err
	}); err != nil {
		return nil, err
	}
	stepUS := float64(time.Duration(c.Days)*24*time.Hour/time.Microsecond) / float64(c.Rows)
	const chunk = 1_000_000
	for lo := 1; lo <= c.Rows; lo += chunk {
		hi := min(lo+chunk-1, c.Rows)
		if err := step(fmt.Sprintf("audit_logs rows %d–%d", lo, hi), int64(hi-lo+1), exec(`
			INSERT INTO audit_logs (id, occurred_at, event_type, actor_user_id, team_id, channel_id, run_id, ce_id, details)
			OVERRIDING SYSTEM VALUE
			SELECT g, $1::timestamptz + (g * $2::float8) * interval '1 microsecond',
				CASE WHEN g % 101 = 0 THEN 'housekeeping_done'
					WHEN g % 1009 = 1008 THEN 'run_cancelled'
					ELSE (ARRAY['order_placed', 'order_placed', 'order_placed', 'order_updated', 'run_created', 'run_announced',
						'run_closed', 'runner_dmed', 'run_completed', 'last_call_warned'])[1 + g % 10] END,
				-- Actor: u² of a well-spread u in [0, 1) (Fibonacci hashing of g), so
				-- low-numbered actors are busy and most are not.
				CASE WHEN g % 101 <> 0 THEN 'U' || (1000000 + floor(10000 * power(((g * 2654435761) % 4294967296)::float8 / 4294967296, 2))::int) END,
				CASE WHEN g % 101 <> 0 THEN 'T' || (1000 + g % 50) END,
				CASE WHEN g % 101 <> 0 THEN 'C' || (1000000 + g % 1000) END,
				CASE WHEN g % 101 <> 0 THEN lpad(to_hex(g / 12), 32, '0')::uuid END, 'ce-' || g,
				(ARRAY['{"drink": "latte", "size": "medium"}', '{"drink": "mocha", "size": "large", "edited": true}',
					'{"runner": "U1001234", "why": "0 runs in 30 days; team median 2"}', '{}']::jsonb[])[1 + g % 4]
			FROM generate_series($3::bigint, $4::bigint) g`, start, stepUS, lo, hi)); err != nil {
			return nil, err
		}
	}
	if err := step("identity restart", -1, exec(fmt.Sprintf("ALTER TABLE audit_logs ALTER COLUMN id RESTART WITH %d", c.Rows+1))); err != nil {
		return nil, err
	}
	for _, d := range defs {
		if err := step("index "+d.name, -1, exec(d.sql)); err != nil {
			return nil, err
		}
	}
	// The table must end with exactly the indexes the migrations gave it.
	if after, err := readDefs(); err != nil || !slices.Equal(after, defs) {
		return nil, fmt.Errorf("seed audit: indexes after the load differ from the migrated ones (%v): %v, want %v", err, after, defs)
	}
	if err := step("VACUUM (ANALYZE), CHECKPOINT", -1, func() error {
		for _, s := range []string{"ALTER TABLE audit_logs RESET (autovacuum_enabled)", "VACUUM (ANALYZE) audit_logs", "CHECKPOINT"} {
			if _, err := conn.Exec(ctx, s); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return nil, err
	}
	return steps, nil
}

// partitionName is the daily partition holding day (UTC midnight).
func partitionName(day time.Time) string { return "audit_logs_p" + day.Format("20060102") }

// partitionDays are the UTC days the partitioned layout has partitions for:
// every day with seeded rows, and a week ahead, as the daily function would
// keep them.
func partitionDays(first, last time.Time) []time.Time {
	var days []time.Time
	for d := first.UTC().Truncate(24 * time.Hour); !d.After(last.UTC().Add(7 * 24 * time.Hour)); d = d.Add(24 * time.Hour) {
		days = append(days, d)
	}
	return days
}

// convertToPartitions is what a transactional up migration to option (b)
// would do on the live table: in one transaction, move audit_logs aside,
// create the partitioned table (daily range partitions on occurred_at; the
// primary key has to include occurred_at, so it becomes (occurred_at, id)),
// copy every row, build the indexes, drop the old table. The first statement
// takes ACCESS EXCLUSIVE on audit_logs until COMMIT, so every function that
// writes an audit row (every state change) waits for the whole of it.
func convertToPartitions(ctx context.Context, conn *pgx.Conn, c auditConfig, days []time.Time) (steps []seedStep, err error) {
	rows, _ := conn.Query(ctx, `SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
		FROM pg_index i WHERE i.indrelid = 'audit_logs'::regclass AND NOT i.indisprimary ORDER BY 1`)
	type idx struct{ name, sql string }
	secondary, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (idx, error) {
		var i idx
		return i, r.Scan(&i.name, &i.sql)
	})
	if err != nil {
		return nil, fmt.Errorf("convert: read indexes: %w", err)
	}
	if _, err := conn.Exec(ctx, "SET maintenance_work_mem = '512MB'"); err != nil {
		return nil, err
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer func() { _ = tx.Rollback(ctx) }()
	began := time.Now()
	step := func(name string, sqls ...string) error {
		t0 := time.Now()
		var n int64 = -1
		for _, s := range sqls {
			tag, err := tx.Exec(ctx, s)
			if err != nil {
				return fmt.Errorf("convert: %s: %s: %w", name, sqlOneLine(s, 80), err)
			}
			if tag.Insert() {
				n = tag.RowsAffected()
			}
		}
		steps = append(steps, seedStep{Name: name, Took: time.Since(t0), Rows: n})
		c.logf("converted: %s in %s", name, time.Since(t0).Round(time.Millisecond))
		return nil
	}
	moveAside := []string{"ALTER TABLE audit_logs RENAME TO audit_logs_unpartitioned"}
	for _, i := range secondary {
		moveAside = append(moveAside, fmt.Sprintf("ALTER INDEX %s RENAME TO %s", i.name, pgx.Identifier{i.name + "_unpartitioned"}.Sanitize()))
	}
	moveAside = append(moveAside, "ALTER INDEX audit_logs_pkey RENAME TO audit_logs_unpartitioned_pkey")
	if err := step("move the table aside (ACCESS EXCLUSIVE from here to COMMIT)", moveAside...); err != nil {
		return nil, err
	}
	create := []string{`CREATE TABLE audit_logs (LIKE audit_logs_unpartitioned INCLUDING DEFAULTS INCLUDING IDENTITY INCLUDING COMMENTS)
		PARTITION BY RANGE (occurred_at)`}
	for _, d := range days {
		create = append(create, fmt.Sprintf("CREATE TABLE %s PARTITION OF audit_logs FOR VALUES FROM ('%s') TO ('%s')",
			partitionName(d), d.Format(time.RFC3339), d.Add(24*time.Hour).Format(time.RFC3339)))
	}
	if err := step(fmt.Sprintf("create the partitioned table and %d daily partitions", len(days)), create...); err != nil {
		return nil, err
	}
	if err := step("copy every row", `INSERT INTO audit_logs OVERRIDING SYSTEM VALUE SELECT * FROM audit_logs_unpartitioned`); err != nil {
		return nil, err
	}
	build := []string{"ALTER TABLE audit_logs ADD PRIMARY KEY (occurred_at, id)"}
	for _, i := range secondary {
		if strings.HasSuffix(i.sql, "USING btree (occurred_at, id)") {
			continue // the new primary key is this index (000012's audit_logs_occurred_id)
		}
		build = append(build, i.sql) // its original name and definition, now on the partitioned table
	}
	if err := step("build the indexes (primary key (occurred_at, id) and the others)", build...); err != nil {
		return nil, err
	}
	if err := step("identity restart, drop the old table",
		fmt.Sprintf("ALTER TABLE audit_logs ALTER COLUMN id RESTART WITH %d", c.Rows+1),
		"DROP TABLE audit_logs_unpartitioned"); err != nil {
		return nil, err
	}
	t0 := time.Now()
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("convert: commit: %w", err)
	}
	steps = append(steps, seedStep{Name: "COMMIT", Took: time.Since(t0), Rows: -1})
	steps = append(steps, seedStep{Name: "**audit writes blocked for (the whole migration)**", Took: time.Since(began), Rows: -1})
	t0 = time.Now()
	for _, s := range []string{"VACUUM (ANALYZE) audit_logs", "CHECKPOINT"} {
		if _, err := conn.Exec(ctx, s); err != nil {
			return nil, fmt.Errorf("convert: %s: %w", s, err)
		}
	}
	steps = append(steps, seedStep{Name: "VACUUM (ANALYZE), CHECKPOINT (after, not blocking)", Took: time.Since(t0), Rows: -1})
	return steps, nil
}

// sizes reports the heap and total (with indexes and TOAST) bytes of
// audit_logs, summed over its partitions if it has any.
func sizes(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}) (heap, total int64, err error) {
	err = q.QueryRow(ctx, `
		SELECT coalesce(sum(pg_relation_size(c.oid)), 0)::bigint, coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint
		FROM pg_class c
		WHERE c.relkind = 'r' AND (c.oid = 'audit_logs'::regclass
			OR c.oid IN (SELECT relid FROM pg_partition_tree('audit_logs') WHERE isleaf))`).Scan(&heap, &total)
	return heap, total, err
}

func mib(b int64) string { return fmt.Sprintf("%.0f", float64(b)/(1<<20)) }
