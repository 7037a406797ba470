package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/coffeebuddy/coffeebuddy/shared/audit"
	"github.com/coffeebuddy/coffeebuddy/shared/auditquery"
	"github.com/coffeebuddy/coffeebuddy/shared/postgres"
)

// auditConfig sizes the audit retention benchmark (issue 8 item 4).
type auditConfig struct {
	Rows          int // audit rows seeded, spread evenly over Days up to now
	Days          int
	RetentionDays int           // the cut-off: now − RetentionDays at seeding
	Writers       int           // concurrent audit writers
	Interval      time.Duration // between one writer's writes
	Baseline      time.Duration // writers alone before the delete starts
	Reader        time.Duration // a read transaction held on audit_logs from the delete's start
	Batch         int           // rows per statement of the batched deletes
	Scenarios     []string      // which ones to run (scenarioNames order)
	QueryIters    int           // measured calls per audit query shape
	Repeat        int           // rounds of the scenarios (the machine is noisy: compare rounds)
	Seed          uint64
	Log           io.Writer

	Retention bool      // run the retention scenarios (and the query shapes after them)
	API       apiConfig // the audit query API part (auditapi.go), if API.On
}

// fullAudit is the size: 10 million rows over 120 days, a 90-day
// retention (the oldest 30 days, ≈ 2.5 million rows, expire).
func fullAudit() auditConfig {
	return auditConfig{Rows: 10_000_000, Days: 120, RetentionDays: 90, Writers: 4, Interval: 20 * time.Millisecond,
		Baseline: 10 * time.Second, Reader: 3 * time.Second, Batch: audit.DefaultLimits.Batch,
		Scenarios: scenarioNames(), QueryIters: 300, Repeat: 2, Seed: 1, Retention: true, API: fullAPI()}
}

func (c auditConfig) validate() error {
	if c.Rows < 1000 || c.Days < 2 || c.RetentionDays < 1 || c.RetentionDays >= c.Days || c.Writers < 1 ||
		c.Interval <= 0 || c.Batch < 1 || c.QueryIters < 1 || c.Repeat < 1 {
		return fmt.Errorf("bad audit size %+v", c)
	}
	if !c.Retention && !c.API.On {
		return fmt.Errorf("audit: neither the retention nor the query API part is on")
	}
	if c.API.On {
		if err := c.API.validate(c.Days); err != nil {
			return err
		}
	}
	for _, s := range c.Scenarios {
		if !slices.Contains(scenarioNames(), s) {
			return fmt.Errorf("unknown audit scenario %q (have %s)", s, strings.Join(scenarioNames(), ", "))
		}
	}
	return nil
}

func (c auditConfig) logf(format string, args ...any) {
	if c.Log != nil {
		fmt.Fprintf(c.Log, "scalebench: audit: "+format+"\n", args...)
	}
}

// retentionScenario is one way to delete the expired rows, run on a fresh
// copy of the seeded database of its layout.
type retentionScenario struct {
	name, layout, about string
	run                 func(ctx context.Context, pool *pgxpool.Pool, env scenarioEnv) (deleted int64, statements int, err error)
}

type scenarioEnv struct {
	cutoff   time.Time
	expired  []time.Time      // partitioned layout: the days whose partition lies wholly before the cut-off
	partRows map[string]int64 // their row counts, counted before the clock starts
	batch    int
}

const (
	layoutPlain       = "plain"
	layoutPartitioned = "partitioned"
)

func scenarios() []retentionScenario {
	batched := func(ctx context.Context, pool *pgxpool.Pool, env scenarioEnv) (int64, int, error) {
		d, err := audit.DeleteExpired(ctx, pool, env.cutoff, audit.Limits{Batch: env.batch})
		return d.Deleted, d.Batches, err
	}
	dropParts := func(concurrently bool) func(context.Context, *pgxpool.Pool, scenarioEnv) (int64, int, error) {
		return func(ctx context.Context, pool *pgxpool.Pool, env scenarioEnv) (int64, int, error) {
			var dropped int64
			stmts := 0
			for _, d := range env.expired {
				n := env.partRows[partitionName(d)]
				if concurrently {
					if _, err := pool.Exec(ctx, fmt.Sprintf("ALTER TABLE audit_logs DETACH PARTITION %s CONCURRENTLY", partitionName(d))); err != nil {
						return dropped, stmts, err
					}
					stmts++
				}
				if _, err := pool.Exec(ctx, "DROP TABLE "+partitionName(d)); err != nil {
					return dropped, stmts, err
				}
				stmts++
				dropped += n
			}
			// The day the cut-off falls in keeps its newer rows: at most a
			// day's rows, deleted in that partition alone (the batched
			// delete would work too, but pays for pruning every batch).
			tag, err := pool.Exec(ctx, "DELETE FROM "+partitionName(env.cutoff.UTC().Truncate(24*time.Hour))+" WHERE occurred_at < $1", env.cutoff)
			return dropped + tag.RowsAffected(), stmts + 1, err
		}
	}
	return []retentionScenario{
		{"batched", layoutPlain,
			"`audit.DeleteExpired` as the function runs it: batches of `-audit-batch` rows, each its own statement, resuming at the last `occurred_at` (no per-run cap here, to time the whole 30 days)",
			batched},
		{"batched-x10", layoutPlain, "the same with batches ten times larger",
			func(ctx context.Context, pool *pgxpool.Pool, env scenarioEnv) (int64, int, error) {
				env.batch *= 10
				return batched(ctx, pool, env)
			}},
		{"batched-from-start", layoutPlain,
			"the same batches without resuming: each walks the `occurred_at` index from its start, over the entries the batches before it deleted (the housekeeping pattern)",
			func(ctx context.Context, pool *pgxpool.Pool, env scenarioEnv) (int64, int, error) {
				var total int64
				for stmts := 1; ; stmts++ {
					tag, err := pool.Exec(ctx, `DELETE FROM audit_logs WHERE id = ANY (ARRAY(
						SELECT id FROM audit_logs WHERE occurred_at < $1 ORDER BY occurred_at LIMIT $2))`, env.cutoff, env.batch)
					if err != nil {
						return total, stmts, err
					}
					total += tag.RowsAffected()
					if tag.RowsAffected() < int64(env.batch) {
						return total, stmts, nil
					}
				}
			}},
		{"one-delete", layoutPlain, "one `DELETE FROM audit_logs WHERE occurred_at < $1`: one transaction",
			func(ctx context.Context, pool *pgxpool.Pool, env scenarioEnv) (int64, int, error) {
				tag, err := pool.Exec(ctx, `DELETE FROM audit_logs WHERE occurred_at < $1`, env.cutoff)
				return tag.RowsAffected(), 1, err
			}},
		{"partition-detach", layoutPartitioned,
			"daily partitions: `ALTER TABLE … DETACH PARTITION … CONCURRENTLY` + `DROP TABLE` per expired day, then one `DELETE … WHERE occurred_at < $1` in the partition of the day the cut-off falls in",
			dropParts(true)},
		{"partition-drop", layoutPartitioned,
			"daily partitions: `DROP TABLE` per expired day (ACCESS EXCLUSIVE on the parent each time), then the same `DELETE` in the cut-off's day",
			dropParts(false)},
	}
}

func scenarioNames() []string {
	var out []string
	for _, s := range scenarios() {
		out = append(out, s.name)
	}
	return out
}

// auditReport is everything the audit benchmark found.
type auditReport struct {
	Settings            [][2]string
	LoadBefore          string
	Seeded, SeedStart   time.Time
	Cutoff              time.Time
	Expired             int64
	Seed                []seedStep
	Heap, Total         int64
	Convert             []seedStep
	PartHeap, PartTotal int64
	Partitions          int
	BatchPlan           statementPlans
	Violations          []string
	Runs                []scenarioResult
	Queries             []shapeResult
	Indexes             []indexInfo // audit_logs' indexes after the seed: the migrated schema's
	Migration           int64       // the schema version the seed ran on
	API                 *apiReport  // the audit query API part, if it ran
}

// indexInfo is one index of the seeded audit_logs.
type indexInfo struct {
	Name, Def string
	Bytes     int64
}

type scenarioResult struct {
	Name, Layout, About string
	Round               int
	Deleted             int64
	Statements          int
	Took                time.Duration
	WAL                 int64
	BaselineWALPerSec   float64
	ReaderWait          time.Duration // how long the reader's transaction lasted (its own clock)
	Baseline, During    latency
	Slow                int           // writes during the delete that took over 100 ms
	SlowestAt           time.Duration // when the slowest write was issued, from the delete's start
	Checkpoints         int64         // checkpoints that began during the delete (timed or requested)
	SizeBefore          int64
	SizeAfter           int64
	Vacuum              time.Duration
	VacuumWAL           int64
	SizeAfterVacuum     int64
}

// runAudit seeds a database on serverURL, converts a copy to partitions
// if a partitioned scenario is asked for, and runs each scenario on a copy
// of its layout's database, dropping everything at the end.
func runAudit(ctx context.Context, serverURL string, c auditConfig) (rep *auditReport, err error) {
	if err := c.validate(); err != nil {
		return nil, err
	}
	rep = &auditReport{LoadBefore: loadAverage()}
	base := "auditbench_" + randomHex(4)
	var dbs []string
	defer func() {
		dctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		for _, db := range dbs {
			if dropErr := admin(dctx, serverURL, "DROP DATABASE IF EXISTS "+pgx.Identifier{db}.Sanitize()+" WITH (FORCE)"); dropErr != nil && err == nil {
				err = dropErr
			}
		}
	}()
	create := func(name, template string) (string, error) {
		sql := "CREATE DATABASE " + pgx.Identifier{name}.Sanitize()
		if template != "" {
			// FILE_COPY: a checkpoint and a file copy, instead of writing
			// gigabytes of WAL (WAL_LOG, the default).
			sql += " TEMPLATE " + pgx.Identifier{template}.Sanitize() + " STRATEGY FILE_COPY"
		}
		dbs = append(dbs, name)
		if err := admin(ctx, serverURL, sql); err != nil {
			return "", err
		}
		return withDatabase(serverURL, name)
	}

	plainName := base + "_plain"
	plainURL, err := create(plainName, "")
	if err != nil {
		return nil, err
	}
	if err := postgres.MigrateUp(ctx, plainURL); err != nil {
		return nil, err
	}
	conn, err := pgx.Connect(ctx, plainURL)
	if err != nil {
		return nil, err
	}
	if rep.Settings, err = serverSettings(ctx, conn); err != nil {
		conn.Close(ctx)
		return nil, err
	}
	rep.Seeded = time.Now().UTC().Truncate(time.Microsecond)
	rep.SeedStart = rep.Seeded.Add(-time.Duration(c.Days) * 24 * time.Hour)
	rep.Cutoff = rep.Seeded.Add(-time.Duration(c.RetentionDays) * 24 * time.Hour)
	c.logf("seeding %d audit rows over %d days", c.Rows, c.Days)
	rep.Seed, err = auditSeed(ctx, conn, c, rep.SeedStart)
	if err == nil {
		rep.Heap, rep.Total, err = sizes(ctx, conn)
	}
	if err == nil {
		rows, _ := conn.Query(ctx, `SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid), pg_relation_size(i.indexrelid)
			FROM pg_index i WHERE i.indrelid = 'audit_logs'::regclass ORDER BY 1`)
		rep.Indexes, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (indexInfo, error) {
			var x indexInfo
			return x, r.Scan(&x.Name, &x.Def, &x.Bytes)
		})
	}
	if err == nil {
		err = conn.QueryRow(ctx, `SELECT version FROM schema_migrations`).Scan(&rep.Migration)
	}
	if err == nil {
		err = conn.QueryRow(ctx, `SELECT count(*) FROM audit_logs WHERE occurred_at < $1`, rep.Cutoff).Scan(&rep.Expired)
	}
	conn.Close(context.Background())
	if err != nil {
		return nil, err
	}
	c.logf("%d rows (%s MiB with indexes), %d older than the cut-off %s", c.Rows, mib(rep.Total), rep.Expired, rep.Cutoff.Format(time.RFC3339))

	if c.API.On {
		// On the seeded database itself, read-only, before any copy is
		// made of it: 10 million rows over the whole 120 days.
		c.logf("audit query API: %d samples per cell after %d warm-up rounds", c.API.Iters, c.API.Warmup)
		if rep.API, err = runAPI(ctx, plainURL, c, rep); err != nil {
			return nil, fmt.Errorf("audit query API: %w", err)
		}
		rep.Violations = append(rep.Violations, rep.API.Violations...)
	}
	if !c.Retention {
		return rep, nil
	}

	days := partitionDays(rep.SeedStart, rep.Seeded)
	var expiredDays []time.Time
	for _, d := range days {
		if !d.Add(24 * time.Hour).After(rep.Cutoff) {
			expiredDays = append(expiredDays, d)
		}
	}
	templates := map[string]string{layoutPlain: plainName}
	partRows := map[string]int64{}
	if slices.ContainsFunc(c.Scenarios, func(n string) bool { return strings.HasPrefix(n, "partition") }) {
		partName := base + "_part"
		partURL, err := create(partName, plainName)
		if err != nil {
			return nil, err
		}
		conn, err := pgx.Connect(ctx, partURL)
		if err != nil {
			return nil, err
		}
		c.logf("converting a copy to %d daily partitions, as a migration would", len(days))
		rep.Convert, err = convertToPartitions(ctx, conn, c, days)
		if err == nil {
			rep.PartHeap, rep.PartTotal, err = sizes(ctx, conn)
		}
		conn.Close(context.Background())
		if err != nil {
			return nil, err
		}
		rep.Partitions = len(days)
		templates[layoutPartitioned] = partName
		conn, err = pgx.Connect(ctx, partURL)
		if err != nil {
			return nil, err
		}
		for _, d := range expiredDays {
			var n int64
			if err := conn.QueryRow(ctx, "SELECT count(*) FROM "+partitionName(d)).Scan(&n); err != nil {
				conn.Close(context.Background())
				return nil, err
			}
			partRows[partitionName(d)] = n
		}
		conn.Close(context.Background())
	}

	for round := 1; round <= c.Repeat; round++ {
		for _, s := range scenarios() {
			if !slices.Contains(c.Scenarios, s.name) {
				continue
			}
			url, err := create(base+"_"+strings.ReplaceAll(s.name, "-", "_"), templates[s.layout])
			if err != nil {
				return nil, err
			}
			res, err := runScenario(ctx, url, s, round, scenarioEnv{cutoff: rep.Cutoff, expired: expiredDays, partRows: partRows, batch: c.Batch}, c, rep)
			if err != nil {
				return nil, fmt.Errorf("scenario %s (round %d): %w", s.name, round, err)
			}
			rep.Runs = append(rep.Runs, res)
			// The copy is done with: free its gigabytes before the next one.
			if err := admin(ctx, serverURL, "DROP DATABASE "+pgx.Identifier{dbs[len(dbs)-1]}.Sanitize()+" WITH (FORCE)"); err != nil {
				return nil, err
			}
			dbs = dbs[:len(dbs)-1]
		}
	}
	return rep, nil
}

// runScenario measures one scenario on a fresh copy at url: writers alone
// for c.Baseline, then the delete (with the reader holding its lock for
// the first c.Reader), then VACUUM; the batched and partition-detach runs
// are then also where the audit query shapes are timed.
func runScenario(ctx context.Context, url string, s retentionScenario, round int, env scenarioEnv, c auditConfig, rep *auditReport) (res scenarioResult, err error) {
	res = scenarioResult{Name: s.name, Layout: s.layout, About: s.about, Round: round}
	first := round == 1
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return res, err
	}
	cfg.MaxConns = int32(c.Writers + 4)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return res, err
	}
	defer pool.Close()
	var rows0 int64
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM audit_logs`).Scan(&rows0); err != nil {
		return res, err
	}
	if s.name == "batched" && first {
		if rep.BatchPlan, err = explainBatch(ctx, url, env); err != nil {
			return res, err
		}
		rep.Violations = append(rep.Violations, checkBatchPlan(rep.BatchPlan)...)
	}
	if _, err := pool.Exec(ctx, "CHECKPOINT"); err != nil {
		return res, err
	}
	if _, res.SizeBefore, err = sizes(ctx, pool); err != nil {
		return res, err
	}

	c.logf("%s: writers alone for %s", s.name, c.Baseline)
	w := startWriters(ctx, pool, c.Writers, c.Interval)
	baseStart := time.Now()
	lsnBase := walLSN(ctx, pool)
	time.Sleep(c.Baseline)
	readerStart := time.Now()
	res.BaselineWALPerSec = float64(walDiff(ctx, pool, walLSN(ctx, pool), lsnBase)) / readerStart.Sub(baseStart).Seconds()
	reader := holdReader(ctx, pool, c.Reader)
	time.Sleep(50 * time.Millisecond) // the reader has its lock before the delete starts
	c.logf("%s: deleting rows before %s", s.name, env.cutoff.Format(time.RFC3339))
	lsn0 := walLSN(ctx, pool)
	cp0 := checkpoints(ctx, pool)
	start := time.Now()
	var delErr error
	res.Deleted, res.Statements, delErr = s.run(ctx, pool, env)
	end := time.Now()
	res.Took = end.Sub(start)
	res.WAL = walDiff(ctx, pool, walLSN(ctx, pool), lsn0)
	res.Checkpoints = checkpoints(ctx, pool) - cp0
	rr := <-reader
	readerErr := rr.err
	res.ReaderWait = rr.took
	ins, werr := w.finish()
	if delErr != nil {
		return res, delErr
	}
	if readerErr != nil {
		return res, fmt.Errorf("reader: %w", readerErr)
	}
	if werr != nil {
		return res, werr
	}
	res.Baseline = window(ins, baseStart, readerStart)
	res.During = window(ins, start, end)
	var slowest time.Duration
	for _, in := range ins {
		if in.at.Before(start) || !in.at.Before(end) {
			continue
		}
		if in.took > 100*time.Millisecond {
			res.Slow++
		}
		if in.took > slowest {
			slowest, res.SlowestAt = in.took, in.at.Sub(start)
		}
	}
	c.logf("%s: %d rows in %s, %d statements; writes during it: max %s, p99 %s (%d)", s.name, res.Deleted,
		res.Took.Round(time.Millisecond), res.Statements, res.During.Max.Round(time.Microsecond), res.During.P99.Round(time.Microsecond), res.During.N)

	// What is left must be exactly the unexpired rows and the writes.
	var left, old int64
	if err := pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE occurred_at < $1) FROM audit_logs`, env.cutoff).Scan(&left, &old); err != nil {
		return res, err
	}
	if old != 0 || res.Deleted != rep.Expired || left != rows0-rep.Expired+int64(len(ins)) {
		return res, fmt.Errorf("after the delete: %d rows left (%d expired), deleted %d; want %d left, %d deleted",
			left, old, res.Deleted, rows0-rep.Expired+int64(len(ins)), rep.Expired)
	}
	if _, res.SizeAfter, err = sizes(ctx, pool); err != nil {
		return res, err
	}
	lsnV := walLSN(ctx, pool)
	t0 := time.Now()
	if _, err := pool.Exec(ctx, "VACUUM (ANALYZE) audit_logs"); err != nil {
		return res, err
	}
	res.Vacuum = time.Since(t0)
	res.VacuumWAL = walDiff(ctx, pool, walLSN(ctx, pool), lsnV)
	if _, res.SizeAfterVacuum, err = sizes(ctx, pool); err != nil {
		return res, err
	}

	if first && (s.name == "batched" || s.name == "partition-detach") {
		c.logf("%s: timing the audit query shapes", s.name)
		shapes, err := measureShapes(ctx, pool, s.layout, c, rep)
		if err != nil {
			return res, err
		}
		rep.Queries = append(rep.Queries, shapes...)
	}
	return res, nil
}

// checkpoints counts the checkpoints the server has started (timed and
// requested, e.g. by max_wal_size).
func checkpoints(ctx context.Context, pool *pgxpool.Pool) int64 {
	var n int64
	_ = pool.QueryRow(ctx, "SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter").Scan(&n)
	return n
}

func walLSN(ctx context.Context, pool *pgxpool.Pool) string {
	var lsn string
	_ = pool.QueryRow(ctx, "SELECT pg_current_wal_insert_lsn()::text").Scan(&lsn)
	return lsn
}

func walDiff(ctx context.Context, pool *pgxpool.Pool, to, from string) int64 {
	var n float64
	_ = pool.QueryRow(ctx, "SELECT pg_wal_lsn_diff($1::pg_lsn, $2::pg_lsn)", to, from).Scan(&n)
	return int64(n)
}

// explainBatch captures the first statement audit.DeleteExpired sends and
// explains it, as planned for its arguments and as the generic plan, in
// transactions that are rolled back.
func explainBatch(ctx context.Context, url string, env scenarioEnv) (statementPlans, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return statementPlans{}, err
	}
	tr := &tracer{}
	cfg.Tracer = tr
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return statementPlans{}, err
	}
	defer conn.Close(context.Background())
	tx, err := conn.Begin(ctx)
	if err != nil {
		return statementPlans{}, err
	}
	tr.on = true
	_, err = audit.DeleteExpired(ctx, tx, env.cutoff, audit.Limits{Batch: env.batch, MaxRows: int64(env.batch)})
	tr.on = false
	_ = tx.Rollback(ctx)
	if err != nil || len(tr.stmts) != 1 {
		return statementPlans{}, fmt.Errorf("capture the batch statement: %d statements, %v", len(tr.stmts), err)
	}
	out := []statementPlans{{SQL: tr.stmts[0].SQL}}
	for _, generic := range []bool{false, true} {
		if err := explainInTx(ctx, conn, tr.stmts, out, generic, false); err != nil {
			return statementPlans{}, fmt.Errorf("explain the batch statement: %w", err)
		}
	}
	return out[0], nil
}

// checkBatchPlan: the batch must find its rows through an occurred_at
// index (since migration 000012 the planner takes an index-only scan of
// audit_logs_occurred_id) and delete them through the primary key, never
// scan the table.
func checkBatchPlan(p statementPlans) []string {
	var probs []string
	for k, plan := range [][]string{p.Custom, p.Generic} {
		text := strings.Join(plan, "\n")
		which := []string{"plan", "generic plan"}[k]
		if strings.Contains(text, "Seq Scan on audit_logs") {
			probs = append(probs, "batch delete "+which+": Seq Scan on audit_logs")
		}
		if !regexp.MustCompile(`Index Scan using audit_logs_pkey on audit_logs`).MatchString(text) ||
			!regexp.MustCompile(`Index (Only )?Scan using audit_logs_occurred\w* on audit_logs[\s\S]*Index Cond: \(\(occurred_at >=`).MatchString(text) {
			probs = append(probs, "batch delete "+which+": not a primary-key delete of rows found by an occurred_at index range")
		}
	}
	return probs
}

// shapeResult is one audit query shape timed on one layout after the
// retention (90 days left).
type shapeResult struct {
	Layout, Shape     string
	N                 int
	P50, P95, Max     time.Duration
	Planning, Execute string // from one EXPLAIN (ANALYZE, BUFFERS), ms
	Buffers           string
	Partitions        int // partition scans the plan ran (partitioned layout)
}

// shapeArgs are one call's parameters: a point among the rows left, and
// the range of the rows left (90 days), which the API's queries ask for.
type shapeArgs struct {
	at         time.Time
	id         int64
	run        uuid.UUID
	start, end time.Time
}

// auditShapes are reads of the audit log after the retention, timed on
// both layouts: the audit API's own statements (auditquery.Page: the SQL
// of auditquery.Statement, planned for its values at every call), and one
// lookup by id that no API call makes but that daily partitions make
// expensive.
var auditShapes = []struct {
	name string
	api  func(a shapeArgs) (auditquery.Filter, *auditquery.Position) // nil: sql and args instead
	sql  string
	args func(a shapeArgs) []any
}{
	{name: "API first page (100 rows) of the 90 days left", api: func(a shapeArgs) (auditquery.Filter, *auditquery.Position) {
		return auditquery.Filter{Start: a.start, End: a.end}, nil
	}},
	{name: "API page (100 rows) after a cursor at a random point", api: func(a shapeArgs) (auditquery.Filter, *auditquery.Position) {
		return auditquery.Filter{Start: a.start, End: a.end}, &auditquery.Position{OccurredAt: a.at, ID: a.id}
	}},
	{name: "API page after a cursor, `event_type = 'run_completed'` (10% of rows)", api: func(a shapeArgs) (auditquery.Filter, *auditquery.Position) {
		return auditquery.Filter{Start: a.start, End: a.end, EventTypes: []string{audit.RunCompleted}}, &auditquery.Position{OccurredAt: a.at, ID: a.id}
	}},
	{name: "API: a run's rows (`run_id`, about 12 rows)", api: func(a shapeArgs) (auditquery.Filter, *auditquery.Position) {
		return auditquery.Filter{Start: a.start, End: a.end, RunID: a.run}, nil
	}},
	{name: "one row by `id` (not an API query)", sql: `SELECT * FROM audit_logs WHERE id = $1`,
		args: func(a shapeArgs) []any { return []any{a.id} }},
}

// measureShapes times every shape with parameters at random points of the
// rows left, through a pool. The API's shapes go through auditquery.Page
// as the audit-api function sends them (the unnamed statement, planned for
// its values every time); the hand-written one is a cached prepared
// statement, as pgx sends by default.
func measureShapes(ctx context.Context, pool *pgxpool.Pool, layout string, c auditConfig, rep *auditReport) ([]shapeResult, error) {
	r := rand.New(rand.NewPCG(c.Seed, 11))
	stepUS := float64(time.Duration(c.Days)*24*time.Hour/time.Microsecond) / float64(c.Rows)
	firstLeft := rep.Expired + 1
	next := func() shapeArgs {
		g := firstLeft + r.Int64N(int64(c.Rows)-firstLeft)
		run, _ := uuid.Parse(fmt.Sprintf("%032x", g/12))
		return shapeArgs{at: rep.SeedStart.Add(time.Duration(math.Round(float64(g)*stepUS)) * time.Microsecond), id: g, run: run,
			start: rep.Cutoff, end: rep.Seeded}
	}
	const pageRows = 100
	var out []shapeResult
	for _, sh := range auditShapes {
		res := shapeResult{Layout: layout, Shape: sh.name}
		sql, args := sh.sql, []any(nil)
		if sh.api != nil {
			f, after := sh.api(next())
			sql, args = auditquery.Statement(f, after, pageRows+1) // what Page sends
			args = append([]any{pgx.QueryExecModeCacheDescribe}, args...)
		} else {
			args = sh.args(next())
		}
		rows, _ := pool.Query(ctx, "EXPLAIN (ANALYZE, BUFFERS) "+sql, args...)
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return nil, fmt.Errorf("explain %s: %w", sh.name, err)
		}
		for _, l := range lines {
			t := strings.TrimSpace(l)
			switch {
			case strings.HasPrefix(t, "Planning Time:"):
				res.Planning = strings.TrimSuffix(strings.TrimPrefix(t, "Planning Time: "), " ms")
			case strings.HasPrefix(t, "Execution Time:"):
				res.Execute = strings.TrimSuffix(strings.TrimPrefix(t, "Execution Time: "), " ms")
			case strings.HasPrefix(t, "Buffers:") && res.Buffers == "":
				res.Buffers = strings.TrimPrefix(t, "Buffers: ")
			}
			if strings.Contains(l, " on audit_logs_p") && !strings.Contains(l, "never executed") {
				res.Partitions++
			}
		}
		var s []time.Duration
		warm := max(5, c.QueryIters/10)
		for i := range warm + c.QueryIters {
			a := next()
			t0 := time.Now()
			if sh.api != nil {
				f, after := sh.api(a)
				if _, _, err := auditquery.Page(ctx, pool, f, after, pageRows); err != nil {
					return nil, fmt.Errorf("%s: %w", sh.name, err)
				}
			} else {
				rows, _ := pool.Query(ctx, sh.sql, sh.args(a)...)
				rows.Close()
				if err := rows.Err(); err != nil {
					return nil, fmt.Errorf("%s: %w", sh.name, err)
				}
			}
			if i >= warm {
				s = append(s, time.Since(t0))
			}
		}
		sum := summarize(sh.name, s)
		res.N, res.P50, res.P95, res.Max = sum.N, sum.P50, sum.P95, sum.Max
		out = append(out, res)
	}
	return out, nil
}

// serverSettings are the server's settings that decide these figures.
func serverSettings(ctx context.Context, conn *pgx.Conn) ([][2]string, error) {
	var out [][2]string
	for _, name := range []string{"server_version", "fsync", "synchronous_commit", "full_page_writes", "wal_level",
		"shared_buffers", "max_wal_size", "checkpoint_timeout", "autovacuum", "autovacuum_vacuum_cost_limit"} {
		var v string
		if err := conn.QueryRow(ctx, "SELECT current_setting($1)", name).Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, [2]string{name, v})
	}
	return out, nil
}

func defaultMaxRows() int64             { return audit.DefaultLimits.MaxRows }
func defaultMaxDuration() time.Duration { return audit.DefaultLimits.MaxDuration }
