package pgcluster_test

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/coffeebuddy/coffeebuddy/shared/postgres/pgcluster"
)

// TestRestartKeepsDataAndPool restarts the server under a live pool, as the
// chaos suite does: the row survives and the pool recovers once it has
// thrown away the connections the restart broke.
func TestRestartKeepsDataAndPool(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := pgcluster.Start(ctx, pgcluster.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()

	const maxConns = 4
	cfg, err := pgxpool.ParseConfig(c.URL())
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = maxConns
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := pool.Exec(ctx, `CREATE TABLE t (v text); INSERT INTO t VALUES ('kept')`); err != nil {
		t.Fatal(err)
	}
	// Fill the pool with idle connections for the restart to break.
	fillPool(ctx, t, pool, maxConns)

	port, dir := c.Port(), c.Dir()
	if err := c.Restart(ctx); err != nil {
		t.Fatalf("Restart: %v", err)
	}
	if c.Port() != port || c.Dir() != dir {
		t.Fatalf("after restart port %d dir %s, want %d %s", c.Port(), c.Dir(), port, dir)
	}
	if got := queryRecovering(ctx, t, pool, maxConns); got != "kept" {
		t.Fatalf("row after restart = %q, want kept", got)
	}
}

func TestStopServerStartServer(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := pgcluster.Start(ctx, pgcluster.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	pool, err := pgxpool.New(ctx, c.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := pool.Exec(ctx, `CREATE TABLE t (v text); INSERT INTO t VALUES ('kept')`); err != nil {
		t.Fatal(err)
	}

	if err := c.StopServer(ctx); err != nil {
		t.Fatalf("StopServer: %v", err)
	}
	if err := c.StopServer(ctx); err != nil {
		t.Fatalf("second StopServer: %v", err)
	}
	// New connections are refused while the server is down.
	if conn, err := pgx.Connect(ctx, c.URL()); err == nil {
		_ = conn.Close(ctx)
		t.Fatal("server still accepts connections after StopServer")
	}
	if _, err := os.Stat(c.Dir() + "/data/PG_VERSION"); err != nil {
		t.Fatalf("data directory gone after StopServer: %v", err)
	}

	if err := c.StartServer(ctx); err != nil {
		t.Fatalf("StartServer: %v", err)
	}
	if err := c.StartServer(ctx); err != nil {
		t.Fatalf("StartServer on a running server: %v", err)
	}
	if got := queryRecovering(ctx, t, pool, int(pool.Config().MaxConns)); got != "kept" {
		t.Fatalf("row after StartServer = %q, want kept", got)
	}

	if err := c.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := c.StartServer(ctx); err == nil {
		t.Fatal("StartServer after Stop succeeded")
	}
	if err := c.Restart(ctx); err == nil {
		t.Fatal("Restart after Stop succeeded")
	}
}

// fillPool makes pool open n connections and return them idle.
func fillPool(ctx context.Context, t *testing.T, pool *pgxpool.Pool, n int) {
	t.Helper()
	conns := make([]*pgxpool.Conn, n)
	var wg sync.WaitGroup
	for i := range conns {
		wg.Go(func() {
			conn, err := pool.Acquire(ctx)
			if err != nil {
				t.Error(err)
				return
			}
			conns[i] = conn
		})
	}
	wg.Wait()
	for _, conn := range conns {
		if conn != nil {
			conn.Release()
		}
	}
	if got := pool.Stat().TotalConns(); got != int32(n) {
		t.Fatalf("pool holds %d connections, want %d", got, n)
	}
}

// queryRecovering reads the row through pool, allowing one failure per
// pooled connection the restart broke (pgxpool discards a connection on its
// first fatal error) and one more for a connection opened mid-start.
func queryRecovering(ctx context.Context, t *testing.T, pool *pgxpool.Pool, broken int) string {
	t.Helper()
	var err error
	for range broken + 2 {
		var v string
		if err = pool.QueryRow(ctx, `SELECT v FROM t`).Scan(&v); err == nil {
			return v
		}
		t.Logf("query after restart (a broken connection is discarded): %v", err)
	}
	t.Fatalf("pool did not recover after %d attempts: %v", broken+2, err)
	return ""
}
