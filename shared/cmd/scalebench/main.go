// Command scalebench is the scale benchmark of the journey queries (issue 3,
// item 11): it seeds a real PostgreSQL with 10,000 users, 100,000 runs and
// about 1,000,000 orders, then times the shared/store functions the
// functions call — runner assignment (store.Candidates, and a whole
// store.CloseRun in a rolled-back transaction), the history page
// (store.History, page 1 and a deep page), the preference lookup
// (store.Preferences, store.RecentOrders) and the modal pre-fill
// (store.Favourite) — and prints p50/p95/p99/max per query as Markdown.
//
// It also prints EXPLAIN (ANALYZE, BUFFERS) of every statement those calls
// send, captured from the calls themselves with a pgx tracer (so the SQL is
// the store's, not a copy), both as planned for the call's parameters and as
// the generic plan a cached prepared statement may switch to. It exits 1 if
// any of those plans has a Seq Scan on coffee_runs, orders or
// user_preferences, or reads them through an index that does not fit (a
// full index scan, or a filter that throws most rows away).
//
//	cd shared && go run ./cmd/scalebench          # full size (about a minute)
//	cd shared && go run ./cmd/scalebench -quick   # 10x smaller smoke run
//
// Flags: -n calls per query, -seed, -o FILE (also write the report there),
// -keep (with DATABASE_URL: keep the seeded database for psql).
//
// With -audit it also runs the audit benchmarks of issue 8 on 10 million
// audit rows over 120 days (auditseed.go: every migration applied, the
// indexes rebuilt from their migrated definitions, VACUUM (ANALYZE)):
//
//   - the audit query API (auditapi.go, -audit-api, on with -audit):
//     p50/p95/p99 of the first and the 50th page of a 90-day range per
//     filter shape through shared/auditquery (what functions/audit-api
//     calls), side by side with OFFSET pagination, the plans (exit 1 on a
//     Seq Scan on audit_logs), and a 90-day NDJSON export (Row.AppendJSON
//     against encoding/json, peak heap);
//   - the retention (auditbench.go): the 90-day retention delete of the
//     oldest 30 days done several ways (batched as the audit-retention
//     function does it, one DELETE, daily partitions detached or dropped)
//     while writers commit audit rows, with their waits; then the API's
//     query shapes on both layouts after it.
//
// -journey=false -audit runs both (make audit-bench); -journey=false
// -audit-api only the API part; -audit -audit-api=false only the
// retention. The -audit-* flags size them.
//
// Database: DATABASE_URL's server if set (in new databases that are dropped
// at the end), otherwise an ephemeral cluster (pgcluster) that is stopped
// and removed at the end: for the journey queries a throwaway one (fsync
// off), for the audit benchmark a durable one (fsync, synchronous_commit and
// full_page_writes on, as in production), since commit waits and WAL are
// what it measures.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/coffeebuddy/coffeebuddy/shared/postgres"
	"github.com/coffeebuddy/coffeebuddy/shared/postgres/pgcluster"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("scalebench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	quick := fs.Bool("quick", false, "10x smaller data set (5 teams instead of 50) and fewer iterations: a fast smoke run")
	iters := fs.Int("n", 0, "measured calls per query (default 3000, -quick 500)")
	seed := fs.Uint64("seed", 1, "seed of the data and of the parameter choice")
	keep := fs.Bool("keep", false, "with DATABASE_URL: keep the seeded database (its name is printed) for psql")
	outFile := fs.String("o", "", "also write the Markdown report to this file")
	journey := fs.Bool("journey", true, "run the journey queries benchmark (10k users / 100k runs / 1M orders)")
	auditOn := fs.Bool("audit", false, "run the audit retention benchmark (10M audit rows; about 25 minutes), and the audit query API part unless -audit-api=false")
	apiOn := fs.Bool("audit-api", false, "run the audit query API part on the 10M audit rows (default: on with -audit; alone: -journey=false -audit-api)")
	ac := fullAudit()
	fs.IntVar(&ac.API.Iters, "audit-api-n", ac.API.Iters, "audit query API: measured samples per shape and page")
	fs.IntVar(&ac.API.Warmup, "audit-api-warmup", ac.API.Warmup, "audit query API: warm-up rounds of every shape and page")
	fs.IntVar(&ac.API.Limit, "audit-api-limit", ac.API.Limit, "audit query API: rows a page")
	fs.IntVar(&ac.API.DeepPage, "audit-api-page", ac.API.DeepPage, "audit query API: the deep page timed")
	fs.IntVar(&ac.API.RangeDays, "audit-api-range-days", ac.API.RangeDays, "audit query API: days a query's range covers")
	fs.IntVar(&ac.API.Exports, "audit-api-exports", ac.API.Exports, "audit query API: repetitions of each export mode")
	fs.BoolVar(&ac.API.HTTP, "audit-api-http", ac.API.HTTP, "audit query API: also export through an httptest server")
	fs.IntVar(&ac.Rows, "audit-rows", ac.Rows, "audit rows to seed")
	fs.IntVar(&ac.Days, "audit-days", ac.Days, "days the audit rows span, up to now")
	fs.IntVar(&ac.RetentionDays, "audit-retention-days", ac.RetentionDays, "retention: rows older than this many days are deleted")
	fs.IntVar(&ac.Writers, "audit-writers", ac.Writers, "concurrent audit writers during the delete")
	fs.DurationVar(&ac.Interval, "audit-interval", ac.Interval, "time between one writer's audit writes")
	fs.DurationVar(&ac.Baseline, "audit-baseline", ac.Baseline, "writers alone before each delete")
	fs.DurationVar(&ac.Reader, "audit-reader", ac.Reader, "read transaction held on audit_logs from each delete's start (0: none)")
	fs.IntVar(&ac.Batch, "audit-batch", ac.Batch, "rows per statement of the batched deletes")
	fs.IntVar(&ac.QueryIters, "audit-query-n", ac.QueryIters, "measured calls per audit query shape")
	fs.IntVar(&ac.Repeat, "audit-repeat", ac.Repeat, "rounds of the audit scenarios, each on fresh copies")
	scen := fs.String("audit-scenarios", strings.Join(ac.Scenarios, ","), "comma-separated audit scenarios")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ac.Scenarios = strings.Split(*scen, ",")
	ac.Seed, ac.Log = *seed, stderr
	ac.Retention, ac.API.On = *auditOn, *auditOn
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "audit-api" {
			ac.API.On = *apiOn
		}
	})
	if !*journey && !ac.Retention && !ac.API.On {
		fmt.Fprintln(stderr, "scalebench: nothing to run (-journey=false without -audit or -audit-api)")
		return 2
	}
	cfg := fullSize()
	if *quick {
		cfg = quickSize()
	}
	if *iters > 0 {
		cfg.Iterations, cfg.Warmup = *iters, max(*iters/10, 20)
	}
	cfg.Seed = *seed
	cfg.Log = stderr
	loadBefore := loadAverage()

	var buf strings.Builder
	var violations []string
	if *journey {
		rep, err := runOnServer(ctx, os.Getenv("DATABASE_URL"), cfg, *keep, stderr)
		if err != nil {
			fmt.Fprintf(stderr, "scalebench: %v\n", err)
			return 1
		}
		rep.LoadBefore = loadBefore
		printReport(&buf, cfg, rep)
		violations = append(violations, rep.Violations...)
	}
	if ac.Retention || ac.API.On {
		arep, err := runAuditOnServer(ctx, os.Getenv("DATABASE_URL"), ac, stderr)
		if err != nil {
			fmt.Fprintf(stderr, "scalebench: audit: %v\n", err)
			return 1
		}
		if buf.Len() > 0 {
			buf.WriteString("\n")
		}
		printAuditReport(&buf, ac, arep)
		violations = append(violations, arep.Violations...)
	}
	_, _ = io.WriteString(stdout, buf.String())
	if *outFile != "" {
		err := os.MkdirAll(filepath.Dir(*outFile), 0o755)
		if err == nil {
			err = os.WriteFile(*outFile, []byte(buf.String()), 0o644)
		}
		if err != nil {
			fmt.Fprintf(stderr, "scalebench: %v\n", err)
			return 1
		}
	}
	if len(violations) > 0 {
		fmt.Fprintf(stderr, "scalebench: FAIL: %d plan problem(s) (a Seq Scan on a big table, or an index that does not fit):\n  %s\n",
			len(violations), strings.Join(violations, "\n  "))
		return 1
	}
	return 0
}

// runOnServer makes a fresh database (on DATABASE_URL's server, or on an
// ephemeral cluster), migrates it, benchmarks, and removes it again.
func runOnServer(ctx context.Context, serverURL string, cfg config, keep bool, logw io.Writer) (_ *report, err error) {
	if serverURL == "" {
		keep = false
		fmt.Fprintln(logw, "scalebench: DATABASE_URL not set; starting an ephemeral PostgreSQL cluster")
		startCtx, cancel := context.WithTimeout(ctx, time.Minute)
		c, err := pgcluster.Start(startCtx, pgcluster.Options{})
		cancel()
		if err != nil {
			return nil, err
		}
		defer func() {
			if stopErr := c.Stop(); stopErr != nil && err == nil {
				err = stopErr
			}
		}()
		serverURL = c.URL()
	}
	name := "scalebench_" + randomHex(4)
	if err := admin(ctx, serverURL, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return nil, err
	}
	defer func() {
		if keep {
			fmt.Fprintf(logw, "scalebench: kept database %s\n", name)
			return
		}
		// Also after Ctrl-C: ctx is cancelled, so drop on a fresh one.
		dctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if dropErr := admin(dctx, serverURL, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); dropErr != nil && err == nil {
			err = dropErr
		}
	}()
	dbURL, err := withDatabase(serverURL, name)
	if err != nil {
		return nil, err
	}
	if err := postgres.MigrateUp(ctx, dbURL); err != nil {
		return nil, err
	}
	return bench(ctx, dbURL, cfg)
}

// runAuditOnServer runs the audit benchmark on serverURL, or on a durable
// ephemeral cluster that is stopped and removed at the end.
func runAuditOnServer(ctx context.Context, serverURL string, c auditConfig, logw io.Writer) (_ *auditReport, err error) {
	if serverURL == "" {
		fmt.Fprintln(logw, "scalebench: audit: DATABASE_URL not set; starting a durable ephemeral PostgreSQL cluster")
		// A kept data directory makes pgcluster keep PostgreSQL's durable
		// defaults; it is removed here at the end. Not 0700 all the way up:
		// when running as root the server runs as postgres and must reach it.
		base, err := os.MkdirTemp("", "scalebench-audit-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(base)
		if err := os.Chmod(base, 0o755); err != nil {
			return nil, err
		}
		data := filepath.Join(base, "data")
		if err := pgcluster.MkdirPrivate(data); err != nil {
			return nil, err
		}
		startCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		cl, err := pgcluster.Start(startCtx, pgcluster.Options{DataDir: data})
		cancel()
		if err != nil {
			return nil, err
		}
		defer func() {
			if stopErr := cl.Stop(); stopErr != nil && err == nil {
				err = stopErr
			}
		}()
		serverURL = cl.URL()
	}
	return runAudit(ctx, serverURL, c)
}

func admin(ctx context.Context, serverURL, sql string) error {
	conn, err := pgx.Connect(ctx, serverURL)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, sql); err != nil {
		return fmt.Errorf("%s: %w", sql, err)
	}
	return nil
}

func withDatabase(serverURL, db string) (string, error) {
	u, err := url.Parse(serverURL)
	if err != nil {
		return "", fmt.Errorf("DATABASE_URL is not a valid URL")
	}
	u.Path, u.RawPath = "/"+db, ""
	return u.String(), nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func loadAverage() string {
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			return strings.Join(f[:3], " / ")
		}
	}
	return "unknown"
}

// machine describes where the figures come from.
func machine(pgVersion, loadBefore string) [][2]string {
	cpu := "unknown"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	mem := "unknown"
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		if _, err := fmt.Sscanf(string(b), "MemTotal: %d kB", &kb); err == nil {
			mem = fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
		}
	}
	return [][2]string{
		{"CPUs (`nproc`)", fmt.Sprint(runtime.NumCPU())},
		{"CPU model", cpu},
		{"memory", mem},
		{"PostgreSQL", pgVersion},
		{"Go", runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH},
		{"load average (1/5/15 min) before / after", loadBefore + " → " + loadAverage()},
		{"date", time.Now().UTC().Format("2006-01-02 15:04 UTC")},
	}
}
