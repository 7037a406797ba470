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
// Database: DATABASE_URL's server if set (in a new database that is dropped
// at the end), otherwise an ephemeral cluster (pgcluster) that is stopped
// and removed at the end.
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
	if err := fs.Parse(args); err != nil {
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

	rep, err := runOnServer(ctx, os.Getenv("DATABASE_URL"), cfg, *keep, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "scalebench: %v\n", err)
		return 1
	}
	rep.LoadBefore = loadBefore
	var buf strings.Builder
	printReport(&buf, cfg, rep)
	_, _ = io.WriteString(stdout, buf.String())
	if *outFile != "" {
		if err := os.MkdirAll(filepath.Dir(*outFile), 0o755); err == nil {
			err = os.WriteFile(*outFile, []byte(buf.String()), 0o644)
		}
		if err != nil {
			fmt.Fprintf(stderr, "scalebench: %v\n", err)
			return 1
		}
	}
	if len(rep.Violations) > 0 {
		fmt.Fprintf(stderr, "scalebench: FAIL: %d plan problem(s) (Seq Scan on coffee_runs, orders or user_preferences, or an index that does not fit):\n  %s\n",
			len(rep.Violations), strings.Join(rep.Violations, "\n  "))
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
	return [][2]string{
		{"CPUs (`nproc`)", fmt.Sprint(runtime.NumCPU())},
		{"CPU model", cpu},
		{"PostgreSQL", pgVersion},
		{"Go", runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH},
		{"load average (1/5/15 min) before / after", loadBefore + " → " + loadAverage()},
		{"date", time.Now().UTC().Format("2006-01-02 15:04 UTC")},
	}
}
