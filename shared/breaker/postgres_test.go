package breaker_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"testing"
	"time"

	"github.com/coffeebuddy/coffeebuddy/shared/breaker"
	"github.com/coffeebuddy/coffeebuddy/shared/breaker/breakertest"
	"github.com/coffeebuddy/coffeebuddy/shared/postgres/pgtest"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// instrumentedPool opens a pool on dbURL that feeds and obeys b.
func instrumentedPool(t *testing.T, dbURL string, b *breaker.Breaker) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	breaker.InstrumentPool(cfg, b)
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func hostPort(t *testing.T, dbURL string) string {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

// TestPostgresBreaker: PostgreSQL goes away (connections refused by a
// proxy in front of the real server); five failed calls open the breaker;
// then calls fail at once without dialling; once the database is back, the
// trial after the open period closes it.
func TestPostgresBreaker(t *testing.T) {
	ctx := context.Background()
	db := pgtest.New(t)
	// down starts a pool through a fresh proxy, checks it works, takes the
	// database away and fails five calls.
	down := func(t *testing.T, s breaker.Settings) (*breaker.Breaker, *pgxpool.Pool, *breakertest.Proxy) {
		t.Helper()
		proxy := breakertest.NewProxy(t, hostPort(t, db.URL))
		b := breaker.New("postgres", s)
		pool := instrumentedPool(t, proxy.URL(t, db.URL), b)
		if _, err := pool.Exec(ctx, "select 1"); err != nil {
			t.Fatalf("through the proxy: %v", err)
		}
		proxy.Down() // cuts the pooled connection too
		for i := 1; i <= 5; i++ {
			if b.State() != breaker.Closed {
				t.Fatalf("before failure %d: state %v, want closed", i, b.State())
			}
			_, err := pool.Exec(ctx, "select 1")
			if err == nil || errors.Is(err, breaker.ErrOpen) {
				t.Fatalf("query %d with the database down: %v, want a connection error", i, err)
			}
		}
		return b, pool, proxy
	}

	t.Run("open refuses without dialling", func(t *testing.T) {
		b, pool, proxy := down(t, breaker.Settings{}) // open for 30 s
		if b.State() != breaker.Open {
			t.Fatalf("after 5 connection failures: state %v, want open", b.State())
		}
		// A dial the pool started before the breaker opened may still be
		// landing; count from once the proxy has been quiet for a moment.
		// A call that dials while open adds to the count synchronously.
		dials := proxy.Accepts()
		for quiet := time.Now(); time.Since(quiet) < 300*time.Millisecond; time.Sleep(20 * time.Millisecond) {
			if n := proxy.Accepts(); n != dials {
				dials, quiet = n, time.Now()
			}
		}
		for _, call := range []struct {
			name string
			f    func() error
		}{
			{"Exec", func() error { _, err := pool.Exec(ctx, "select 1"); return err }},
			{"Begin", func() error { _, err := pool.Begin(ctx); return err }},
			{"Ping", func() error { return pool.Ping(ctx) }},
		} {
			if err := call.f(); !errors.Is(err, breaker.ErrOpen) {
				t.Errorf("%s while open: %v, want ErrOpen", call.name, err)
			}
		}
		if got := proxy.Accepts(); got != dials {
			t.Errorf("calls while open dialled the database: %d connections, want %d", got, dials)
		}
	})

	t.Run("closes after a successful trial", func(t *testing.T) {
		b, pool, proxy := down(t, breaker.Settings{HalfOpenAfter: 100 * time.Millisecond})
		if b.State() == breaker.Closed {
			t.Fatal("after 5 connection failures: closed")
		}
		proxy.Up()
		eventually(t, "half-open", func() bool { return b.State() == breaker.HalfOpen })
		if _, err := pool.Exec(ctx, "select 1"); err != nil {
			t.Fatalf("trial once the database is back: %v", err)
		}
		if b.State() != breaker.Closed {
			t.Fatalf("after a successful trial: state %v, want closed", b.State())
		}
	})
}

// TestPostgresAnswersAreSuccesses: errors the database answers with (unique
// violations, syntax errors, no rows) are not outages.
func TestPostgresAnswersAreSuccesses(t *testing.T) {
	ctx := context.Background()
	db := pgtest.New(t)
	b := breaker.New("postgres", breaker.Settings{Failures: 2})
	pool := instrumentedPool(t, db.URL, b)
	if _, err := pool.Exec(ctx, "create table breaker_t (k int primary key)"); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, "insert into breaker_t values (1)"); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		_, err := pool.Exec(ctx, "insert into breaker_t values (1)")
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "23505" {
			t.Fatalf("duplicate insert %d: %v, want a unique violation", i, err)
		}
	}
	// In a transaction too: the violation, then the aborted transaction's
	// refusals (25P02), then the rollback.
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = tx.Exec(ctx, "insert into breaker_t values (1)")
	_, _ = tx.Exec(ctx, "select 1")
	_ = tx.Rollback(ctx)
	if _, err := pool.Exec(ctx, "selec 1"); err == nil {
		t.Fatal("syntax error accepted")
	}
	var k int
	if err := pool.QueryRow(ctx, "select k from breaker_t where k = 2").Scan(&k); !errors.Is(err, pgx.ErrNoRows) {
		t.Fatalf("no rows: %v", err)
	}
	if b.State() != breaker.Closed || b.ConsecutiveFailures() != 0 {
		t.Errorf("after answered errors: state %v, %d consecutive failures; want closed, 0", b.State(), b.ConsecutiveFailures())
	}
}

// TestPostgresTerminatedConnection: a backend killed under an open
// connection (pg_terminate_backend, as a restart or an operator does) is a
// failure; so is a query that runs out of time; a query its caller
// cancels counts neither way.
func TestPostgresTerminatedConnection(t *testing.T) {
	ctx := context.Background()
	db := pgtest.New(t)
	b := breaker.New("postgres", breaker.Settings{})
	pool := instrumentedPool(t, db.URL, b)
	// Three connections up front: a connect is a success, which would
	// reset the run of failures counted below.
	var conns []*pgxpool.Conn
	for range 3 {
		c, err := pool.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Release()
		conns = append(conns, c)
	}
	backendGone := func(pid uint32) func() bool {
		return func() bool {
			var n int
			err := db.Pool.QueryRow(ctx, "select count(*) from pg_stat_activity where pid = $1", pid).Scan(&n)
			return err == nil && n == 0
		}
	}

	pid := conns[0].Conn().PgConn().PID()
	if _, err := db.Pool.Exec(ctx, "select pg_terminate_backend($1)", pid); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the backend to exit", backendGone(pid))
	_, err := conns[0].Exec(ctx, "select 1")
	if err == nil {
		t.Fatal("query on a terminated connection succeeded")
	}
	if got := b.ConsecutiveFailures(); got != 1 {
		t.Errorf("after %v: %d consecutive failures, want 1", err, got)
	}

	tctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if _, err := conns[1].Exec(tctx, "select pg_sleep(10)"); err == nil {
		t.Fatal("pg_sleep(10) finished within 200ms")
	}
	if got := b.ConsecutiveFailures(); got != 2 {
		t.Errorf("after a timeout: %d consecutive failures, want 2", got)
	}

	cctx, cancelQuery := context.WithCancel(ctx)
	defer cancelQuery()
	pid = conns[2].Conn().PgConn().PID()
	errc := make(chan error, 1)
	go func() { _, err := conns[2].Exec(cctx, "select pg_sleep(10)"); errc <- err }()
	eventually(t, "pg_sleep to run", func() bool {
		var n int
		err := db.Pool.QueryRow(ctx, "select count(*) from pg_stat_activity where pid = $1 and state = 'active'", pid).Scan(&n)
		return err == nil && n == 1
	})
	cancelQuery()
	if err := <-errc; err == nil {
		t.Fatal("cancelled pg_sleep(10) succeeded")
	}
	if got := b.ConsecutiveFailures(); got != 2 {
		t.Errorf("after a cancelled call: %d consecutive failures, want still 2", got)
	}
}

func TestPostgresOutcome(t *testing.T) {
	opErr := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
	tests := []struct {
		name string
		err  error
		want breaker.Outcome
	}{
		{"nil", nil, breaker.Success},
		{"unique violation", &pgconn.PgError{Code: "23505"}, breaker.Success},
		{"serialization failure", &pgconn.PgError{Code: "40001"}, breaker.Success},
		{"query canceled by statement_timeout", &pgconn.PgError{Code: "57014"}, breaker.Success},
		{"no rows", pgx.ErrNoRows, breaker.Success},
		{"admin shutdown", &pgconn.PgError{Code: "57P01"}, breaker.Failure},
		{"cannot connect now", fmt.Errorf("begin: %w", &pgconn.PgError{Code: "57P03"}), breaker.Failure},
		{"connection failure", &pgconn.PgError{Code: "08006"}, breaker.Failure},
		{"too many connections", &pgconn.PgError{Code: "53300"}, breaker.Failure},
		{"io error", &pgconn.PgError{Code: "58030"}, breaker.Failure},
		{"dial refused", opErr, breaker.Failure},
		{"unexpected EOF", fmt.Errorf("read: %w", io.ErrUnexpectedEOF), breaker.Failure},
		{"deadline", fmt.Errorf("query: %w", context.DeadlineExceeded), breaker.Failure},
		{"cancelled", fmt.Errorf("query: %w", context.Canceled), breaker.Ignore},
		{"refused by the breaker", fmt.Errorf("acquire: %w", breaker.ErrOpen), breaker.Ignore},
		{"anything else", errors.New("cannot scan into *int"), breaker.Success},
	}
	for _, tt := range tests {
		if got := breaker.PostgresOutcome(tt.err); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}
