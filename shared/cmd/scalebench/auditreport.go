package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

func sec(d time.Duration) string { return fmt.Sprintf("%.1f", d.Seconds()) }

func printAuditReport(w io.Writer, c auditConfig, rep *auditReport) {
	var parts []string
	if rep.API != nil {
		parts = append(parts, "query API")
	}
	if c.Retention {
		parts = append(parts, "retention")
	}
	fmt.Fprintf(w, "# scalebench: audit %s at %d rows over %d days\n\n", strings.Join(parts, " and "), c.Rows, c.Days)
	fmt.Fprintln(w, "## Machine and server")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| | |\n|---|---|")
	for _, kv := range machine("see below", rep.LoadBefore) {
		if kv[0] == "PostgreSQL" {
			continue
		}
		fmt.Fprintf(w, "| %s | %s |\n", kv[0], kv[1])
	}
	for _, kv := range rep.Settings {
		fmt.Fprintf(w, "| `%s` | %s |\n", kv[0], kv[1])
	}

	fmt.Fprintf(w, "\n## Data\n\n%d audit rows, evenly from %s to %s (seeded at the latter), ids ascending with time;\n",
		c.Rows, rep.SeedStart.Format(time.RFC3339), rep.Seeded.Format(time.RFC3339))
	fmt.Fprintln(w, "1% system rows (`housekeeping_done`, no actor, team, channel or run), `run_cancelled` 0.1%, `order_placed` 29%, seven more")
	fmt.Fprintln(w, "types at 9.9% each; 10,000 actors of very different activity (the busiest has 1% of the rows, the median about 0.007%);")
	fmt.Fprintln(w, "50 teams, 1,000 channels, a run per 12 consecutive rows, small JSON details.")
	fmt.Fprintf(w, "Retention %d days: cut-off %s, **%d rows older** (the oldest %d days). Table with indexes: %s MiB (heap %s MiB).\n\n",
		c.RetentionDays, rep.Cutoff.Format(time.RFC3339), rep.Expired, c.Days-c.RetentionDays, mib(rep.Total), mib(rep.Heap))
	fmt.Fprintf(w, "Schema: every migration applied (version %d). The seed drops `audit_logs`' indexes and constraints, loads, and rebuilds them\n", rep.Migration)
	fmt.Fprintln(w, "from their own migrated definitions (checked identical after the load):")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| index | MiB | definition |\n|---|---:|---|")
	for _, x := range rep.Indexes {
		fmt.Fprintf(w, "| %s | %s | `%s` |\n", x.Name, mib(x.Bytes), x.Def)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| seeding step | rows | s |\n|---|---:|---:|")
	for _, s := range rep.Seed {
		printStep(w, s)
	}
	if rep.API != nil {
		printAPIReport(w, rep.API)
	}
	if !c.Retention {
		return
	}
	if len(rep.Convert) > 0 {
		fmt.Fprintf(w, "\n### Converting to daily partitions (what option (b)'s up migration does, on a copy)\n\n")
		fmt.Fprintf(w, "%d daily partitions (the seeded days and a week ahead); primary key (occurred_at, id), which replaces `audit_logs_occurred_id`. With indexes: %s MiB (heap %s MiB).\n\n",
			rep.Partitions, mib(rep.PartTotal), mib(rep.PartHeap))
		fmt.Fprintln(w, "| migration step (one transaction) | rows | s |\n|---|---:|---:|")
		for _, s := range rep.Convert {
			printStep(w, s)
		}
	}

	fmt.Fprintf(w, "\n## Retention delete of the oldest %d days with concurrent audit writers\n\n", c.Days-c.RetentionDays)
	fmt.Fprintf(w, "Each scenario runs on a fresh copy of the seeded database (CREATE DATABASE … TEMPLATE, then CHECKPOINT). %d writers each commit one audit row\n", c.Writers)
	fmt.Fprintf(w, "every %s in its own transaction (`audit.Record`, %d/s in all) on their own connections: %s alone (*before*), then during the delete (*during*).\n",
		c.Interval, int(float64(c.Writers)/c.Interval.Seconds()), c.Baseline)
	fmt.Fprintf(w, "A write's wait is BEGIN to COMMIT as the writer sees it. When the delete starts, a reader opens a transaction on audit_logs and holds it %s\n", c.Reader)
	fmt.Fprintln(w, "(an audit export or a pg_dump in flight). Percentiles are nearest-rank. After the delete, `VACUUM (ANALYZE)` (writers stopped) is timed separately.")
	fmt.Fprintln(w)
	for _, r := range rep.Runs {
		if r.Round == 1 {
			fmt.Fprintf(w, "- **%s** (%s): %s\n", r.Name, r.Layout, r.About)
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| scenario | round | rows deleted | statements | **total s** | WAL MiB | checkpoints | writes before: n / p50 / p99 / max ms | writes during: n / p50 / p99 / **max** ms | during > 100 ms | slowest issued at s | writes/s during | reader's transaction s | size before → after → after VACUUM MiB | VACUUM s (WAL MiB) |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---|---|---:|---:|---:|---:|---|---|")
	for _, r := range rep.Runs {
		fmt.Fprintf(w, "| %s | %d | %d | %d | **%s** | %s | %d | %d / %s / %s / %s | %d / %s / %s / **%s** | %d | %s | %.0f | %s | %s → %s → %s | %s (%s) |\n",
			r.Name, r.Round, r.Deleted, r.Statements, sec(r.Took), mib(r.WAL), r.Checkpoints,
			r.Baseline.N, ms(r.Baseline.P50), ms(r.Baseline.P99), ms(r.Baseline.Max),
			r.During.N, ms(r.During.P50), ms(r.During.P99), ms(r.During.Max), r.Slow, sec(r.SlowestAt), r.During.PerSecond,
			sec(r.ReaderWait), mib(r.SizeBefore), mib(r.SizeAfter), mib(r.SizeAfterVacuum), sec(r.Vacuum), mib(r.VacuumWAL))
	}
	sums := summarizeRuns(rep)
	if len(sums) > 0 {
		fmt.Fprintln(w, "\nMedians over the rounds, and ratios to `batched` (the function's way):")
		fmt.Fprintln(w)
		fmt.Fprintln(w, "| scenario | rounds | total s | longest write ms | p99 write ms | WAL MiB | total ÷ batched | longest write ÷ batched | p99 ÷ batched | WAL ÷ batched |")
		fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
		b := sums[0]
		for _, m := range sums {
			fmt.Fprintf(w, "| %s | %d | %s | %s | %s | %s | %.2f× | %.2f× | %.2f× | %.2f× |\n", m.name, m.rounds, sec(m.took), ms(m.max), ms(m.p99), mib(m.wal),
				m.took.Seconds()/b.took.Seconds(), float64(m.max)/float64(max(b.max, 1)), float64(m.p99)/float64(max(b.p99, 1)), float64(m.wal)/float64(max(b.wal, 1)))
		}
		if b.name == "batched" && b.deleted > 0 {
			perRow := b.took.Seconds() / float64(b.deleted)
			fmt.Fprintf(w, "\nAt the batched rate (%.0f rows/s), the function's per-run cap of %d rows (or %s) is about %.0f s of work, and the first\n",
				1/perRow, defaultMaxRows(), defaultMaxDuration(), perRow*float64(defaultMaxRows()))
			fmt.Fprintf(w, "run after the retention starts at this size (%d expired rows) needs %d tick(s). Steady state, one day's rows (%d) take about %.2f s.\n",
				rep.Expired, (rep.Expired+defaultMaxRows()-1)/defaultMaxRows(), int64(c.Rows/c.Days), perRow*float64(c.Rows/c.Days))
		}
	}

	if len(rep.BatchPlan.Custom) > 0 {
		fmt.Fprintf(w, "\n## The batch statement's plans (checked: no Seq Scan; rows found by an occurred_at index range, deleted by primary key)\n\n`%s`\n\n```\n%s\n```\n\ngeneric plan:\n\n```\n%s\n```\n",
			sqlOneLine(rep.BatchPlan.SQL, 400), strings.Join(rep.BatchPlan.Custom, "\n"), strings.Join(rep.BatchPlan.Generic, "\n"))
		var batchProbs []string
		for _, v := range rep.Violations {
			if strings.HasPrefix(v, "batch delete") {
				batchProbs = append(batchProbs, v)
			}
		}
		if len(batchProbs) == 0 {
			fmt.Fprintln(w, "\nPlan check: PASS")
		} else {
			fmt.Fprintf(w, "\nPlan check: FAIL\n\n- %s\n", strings.Join(batchProbs, "\n- "))
		}
	}

	if len(rep.Queries) > 0 {
		fmt.Fprintf(w, "\n## Audit query shapes after the retention (%d days of rows left), per layout\n\n", c.RetentionDays)
		fmt.Fprintf(w, "Timed on the batched and partition-detach copies after their delete and VACUUM; %d calls each (after a warm-up) with\n", c.QueryIters)
		fmt.Fprintln(w, "parameters at random points of the rows left. The API's shapes go through `auditquery.Page` (its SQL, planned for its values")
		fmt.Fprintln(w, "at every call, as audit-api sends it); the lookup by id is a cached prepared statement. Plain: the migrated indexes;")
		fmt.Fprintln(w, "partitioned: the same indexes per partition, with the primary key (occurred_at, id) instead of (id) and `audit_logs_occurred_id`.")
		fmt.Fprintln(w, "Planning/execution/buffers are from one EXPLAIN (ANALYZE, BUFFERS).")
		fmt.Fprintln(w)
		fmt.Fprintln(w, "| shape | layout | p50 ms | p95 ms | max ms | planning ms | execution ms | partitions scanned | buffers |")
		fmt.Fprintln(w, "|---|---|---:|---:|---:|---:|---:|---:|---|")
		for _, q := range rep.Queries {
			parts := "—"
			if q.Layout == layoutPartitioned {
				parts = fmt.Sprint(q.Partitions)
			}
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", q.Shape, q.Layout, ms(q.P50), ms(q.P95), ms(q.Max),
				q.Planning, q.Execute, parts, q.Buffers)
		}
	}
}

func printStep(w io.Writer, s seedStep) {
	rows := ""
	if s.Rows >= 0 {
		rows = fmt.Sprint(s.Rows)
	}
	fmt.Fprintf(w, "| %s | %s | %.2f |\n", s.Name, rows, s.Took.Seconds())
}

// runSummary is one scenario's medians over the rounds.
type runSummary struct {
	name           string
	rounds         int
	deleted        int64
	took, max, p99 time.Duration
	wal            int64
}

// summarizeRuns returns a summary per scenario, batched first if it ran.
func summarizeRuns(rep *auditReport) []runSummary {
	var out []runSummary
	for _, sc := range scenarioNames() {
		var took, mx, p99, wal []time.Duration
		var deleted int64
		for _, r := range rep.Runs {
			if r.Name == sc {
				took, mx, p99, wal = append(took, r.Took), append(mx, r.During.Max), append(p99, r.During.P99), append(wal, time.Duration(r.WAL))
				deleted = r.Deleted
			}
		}
		if len(took) > 0 {
			out = append(out, runSummary{name: sc, rounds: len(took), deleted: deleted,
				took: median(took), max: median(mx), p99: median(p99), wal: int64(median(wal))})
		}
	}
	return out
}

func median(s []time.Duration) time.Duration {
	s = slices.Clone(s)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func findRun(rep *auditReport, name string) *scenarioResult {
	for i := range rep.Runs {
		if rep.Runs[i].Name == name {
			return &rep.Runs[i]
		}
	}
	return nil
}
