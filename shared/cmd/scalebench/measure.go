package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// result is one query's latency distribution.
type result struct {
	Query              string
	N                  int
	P50, P95, P99, Max time.Duration
	Mean               time.Duration
}

// measure runs Warmup, then Iterations rounds; each round calls every query
// once with fresh random parameters (a fixed seed), so machine noise spreads
// over all queries alike. A call is timed on the client from the store
// call to its return: the round trips and decoding the app pays. CloseRun's
// transaction begin and rollback are outside the timing.
func measure(ctx context.Context, conn *pgx.Conn, qs []query, c config) ([]result, error) {
	r := rand.New(rand.NewPCG(c.Seed, 7))
	samples := make([][]time.Duration, len(qs))
	for i := range samples {
		samples[i] = make([]time.Duration, 0, c.Iterations)
	}
	for round := 0; round < c.Warmup+c.Iterations; round++ {
		for i, q := range qs {
			d, err := timeCall(ctx, conn, q, r)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", q.name, err)
			}
			if round >= c.Warmup {
				samples[i] = append(samples[i], d)
			}
		}
	}
	results := make([]result, len(qs))
	for i, q := range qs {
		results[i] = summarize(q.name, samples[i])
	}
	return results, nil
}

func timeCall(ctx context.Context, conn *pgx.Conn, q query, r *rand.Rand) (time.Duration, error) {
	if !q.inTx {
		start := time.Now()
		err := q.call(ctx, conn, r)
		return time.Since(start), err
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	err = q.call(ctx, tx, r)
	d := time.Since(start)
	if rbErr := tx.Rollback(ctx); err == nil {
		err = rbErr
	}
	return d, err
}

// summarize uses nearest-rank percentiles.
func summarize(name string, s []time.Duration) result {
	slices.Sort(s)
	rank := func(p float64) time.Duration { return s[max(0, int(math.Ceil(p*float64(len(s))))-1)] }
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	return result{Query: name, N: len(s), P50: rank(0.50), P95: rank(0.95), P99: rank(0.99), Max: s[len(s)-1],
		Mean: sum / time.Duration(len(s))}
}

func ms(d time.Duration) string { return fmt.Sprintf("%.3f", float64(d)/float64(time.Millisecond)) }

func printReport(w io.Writer, c config, rep *report) {
	fmt.Fprintf(w, "# scalebench: journey queries at %d users / %d runs / %d orders\n\n", rep.Seed.Users, rep.Seed.Runs, rep.Seed.Orders)
	fmt.Fprintln(w, "## Machine")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| | |\n|---|---|")
	for _, kv := range machine(rep.PGVersion, rep.LoadBefore) {
		fmt.Fprintf(w, "| %s | %s |\n", kv[0], kv[1])
	}

	st := rep.Seed
	fmt.Fprintf(w, "\n## Data\n\n")
	fmt.Fprintf(w, "%d teams × %d channels, %d users (%d per team); %d runs over 400 days (%d completed, %d cancelled, %d active);\n",
		c.Teams, c.ChannelsPerTeam, st.Users, c.UsersPerTeam, st.Runs, st.Completed, st.Cancelled, st.Active)
	fmt.Fprintf(w, "%d orders (0–%d per run); %d user_preferences rows. Seed %d. After VACUUM (ANALYZE), %.1f%% of the pages are all-visible.\n",
		st.Orders, c.MaxOrders, st.Prefs, c.Seed, 100*st.AllVisible)
	d := rep.Data
	fmt.Fprintf(w, "History channels: the %d busiest (%d–%d runs each); deep page %d. Candidates: %d finished runs with 9–11 orderers.\n",
		len(d.busy), d.busy[len(d.busy)-1].runs, d.busy[0].runs, d.deepPage, len(d.candRuns))
	fmt.Fprintf(w, "CloseRun: %d active runs with orders. Users: all %d.\n\n", len(d.activeRuns), len(d.users))
	fmt.Fprintf(w, "**Seeding took %.1f s** (set-based SQL on one connection; FK checks skipped: %v):\n\n", st.Total.Seconds(), st.FKChecksSkipped)
	fmt.Fprintln(w, "| step | rows | s |\n|---|---:|---:|")
	for _, s := range st.Steps {
		rows := ""
		if s.Rows >= 0 {
			rows = fmt.Sprint(s.Rows)
		}
		fmt.Fprintf(w, "| %s | %s | %.2f |\n", s.Name, rows, s.Took.Seconds())
	}

	fmt.Fprintf(w, "\n## Plans\n\nEvery statement each call sent, captured from the call, EXPLAIN (ANALYZE, BUFFERS) with its arguments,\nthen as the generic plan (PREPARE + EXECUTE, plan_cache_mode = force_generic_plan).\n")
	if c.IndexPathsOnly {
		fmt.Fprintln(w, "enable_seqscan = off (tiny data set): this checks that an index path exists.")
	}
	for _, qp := range rep.Plans {
		fmt.Fprintf(w, "\n### %s\n", qp.Query)
		for j, sp := range qp.Statements {
			fmt.Fprintf(w, "\nstatement %d/%d: `%s`\n\n```\n%s\n```\n\ngeneric plan:\n\n```\n%s\n```\n",
				j+1, len(qp.Statements), sqlOneLine(sp.SQL, 160), strings.Join(sp.Custom, "\n"), strings.Join(sp.Generic, "\n"))
		}
	}
	if len(rep.Violations) == 0 {
		fmt.Fprintln(w, "\nPlan check: PASS (no Seq Scan on coffee_runs, orders or user_preferences; every plan uses an index).")
	} else {
		fmt.Fprintf(w, "\nPlan check: FAIL\n\n- %s\n", strings.Join(rep.Violations, "\n- "))
	}

	fmt.Fprintf(w, "\n## Latency (single warm connection, ms; target p95 < %v)\n\n", target)
	fmt.Fprintln(w, "| query | n | p50 | p95 | p99 | max | mean | p95 < 5 ms |\n|---|---:|---:|---:|---:|---:|---:|---|")
	for _, r := range rep.Results {
		verdict := "yes"
		switch {
		case r.Query == baselineName:
			verdict = "—"
		case r.P95 >= target:
			verdict = "**no**"
		}
		fmt.Fprintf(w, "| %s | %d | %s | %s | %s | %s | %s | %s |\n", r.Query, r.N, ms(r.P50), ms(r.P95), ms(r.P99), ms(r.Max), ms(r.Mean), verdict)
	}
}
