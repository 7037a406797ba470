// Package pgtest gives every test its own real, freshly migrated PostgreSQL
// database.
//
// One server per test binary: DATABASE_URL when set, otherwise an ephemeral
// pgcluster started on first use. The schema is migrated once into a template
// database; each test then gets CREATE DATABASE … TEMPLATE, which copies files
// instead of replaying migrations and keeps tests isolated and parallel-safe.
//
// Use it from TestMain:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/coffeebuddy/coffeebuddy/shared/postgres"
	"github.com/coffeebuddy/coffeebuddy/shared/postgres/pgcluster"
)

// DB is one test's private database.
type DB struct {
	// URL connects to the database (superuser; sslmode as the server wants).
	URL string
	// Pool is open on URL and closed by the test's cleanup.
	Pool *pgxpool.Pool
	// Name is the database name.
	Name string
}

// setupTimeout bounds server start, migrations and CREATE/DROP DATABASE.
const setupTimeout = 2 * time.Minute

var (
	serverOnce sync.Once
	serverURL  string
	cluster    *pgcluster.Cluster
	serverErr  error

	templateOnce sync.Once
	templateName string
	templateErr  error

	// runID makes database names from concurrent test binaries (go test ./...
	// runs packages in parallel) distinct on a shared DATABASE_URL server.
	runID = randomHex(4)

	// createMu serialises CREATE DATABASE … TEMPLATE within the binary.
	// The copies are I/O-bound, so one at a time costs little, and it keeps
	// them clear of PostgreSQL's "source database is being accessed by
	// other users" check on the template.
	createMu sync.Mutex

	teardownOnce sync.Once
	teardownErr  error

	// startMu is held while a cluster starts, and baseCtx is cancelled on
	// SIGINT/SIGTERM, so an interrupt during start-up aborts it (Start then
	// removes its directory) before teardown runs.
	startMu           sync.Mutex
	baseCtx, cancelFn = context.WithCancel(context.Background())
)

// Main runs the tests, stops the cluster if one was started, drops the
// template on a DATABASE_URL server, and exits with the tests' code.
func Main(m *testing.M) {
	// The cluster runs in its own process group, so a Ctrl-C reaches only
	// the test binary: stop the cluster cleanly before dying, rather than
	// leave it to Pdeathsig (which would leave the data dir behind).
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		sig := <-sigs
		fmt.Fprintf(os.Stderr, "pgtest: %v: stopping the test cluster\n", sig)
		cancelFn()
		startMu.Lock()
		_ = teardown()
		os.Exit(1)
	}()

	code := m.Run()
	signal.Stop(sigs)
	if err := teardown(); err != nil {
		fmt.Fprintf(os.Stderr, "pgtest: teardown: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// Server returns the admin URL of the test server (database postgres, or
// whatever DATABASE_URL names), starting it if needed.
func Server(t testing.TB) string {
	t.Helper()
	if err := ensureServer(); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	return serverURL
}

// New returns a fresh database holding the full migrated schema, dropped when
// the test ends.
func New(t testing.TB) *DB {
	t.Helper()
	tmpl, err := ensureTemplate()
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	return create(t, tmpl)
}

// NewEmpty returns a fresh database with no migrations applied (for tests
// that drive migrations themselves), dropped when the test ends.
func NewEmpty(t testing.TB) *DB {
	t.Helper()
	if err := ensureServer(); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	// template0 is the pristine database; template1 may have been changed
	// by whoever runs a DATABASE_URL server.
	return create(t, "template0")
}

func create(t testing.TB, template string) *DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()

	name := uniqueName("t")
	if err := createDatabase(ctx, name, template); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	dbURL, err := withDatabase(serverURL, name)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	// Small pool: many tests run in parallel against one server.
	pool, err := postgres.Open(ctx, dbURL, 5)
	if err != nil {
		_ = dropDatabase(context.Background(), name)
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() {
		pool.Close()
		ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
		defer cancel()
		if err := dropDatabase(ctx, name); err != nil {
			t.Errorf("pgtest: %v", err)
		}
	})
	return &DB{URL: dbURL, Pool: pool, Name: name}
}

func ensureServer() error {
	serverOnce.Do(func() {
		if u := os.Getenv("DATABASE_URL"); u != "" {
			serverURL = u
			return
		}
		startMu.Lock()
		defer startMu.Unlock()
		ctx, cancel := context.WithTimeout(baseCtx, setupTimeout)
		defer cancel()
		// Quiet by default; the server log stays in the cluster dir and is
		// quoted in start-up errors.
		cluster, serverErr = pgcluster.Start(ctx, pgcluster.Options{})
		if serverErr != nil {
			return
		}
		serverURL = cluster.URL()
	})
	return serverErr
}

func ensureTemplate() (string, error) {
	templateOnce.Do(func() {
		if templateErr = ensureServer(); templateErr != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
		defer cancel()
		name := uniqueName("tmpl")
		if templateErr = createDatabase(ctx, name, "template0"); templateErr != nil {
			return
		}
		tmplURL, err := withDatabase(serverURL, name)
		if err != nil {
			templateErr = err
			return
		}
		if err := postgres.MigrateUp(ctx, tmplURL); err != nil {
			templateErr = fmt.Errorf("migrate template: %w", err)
			_ = dropDatabase(ctx, name)
			return
		}
		templateName = name
	})
	return templateName, templateErr
}

// teardown drops the template (only matters on a shared DATABASE_URL
// server) and stops our own cluster.
func teardown() error {
	teardownOnce.Do(func() { teardownErr = doTeardown() })
	return teardownErr
}

func doTeardown() error {
	var errs []error
	if templateName != "" && cluster == nil {
		ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
		defer cancel()
		if err := dropDatabase(ctx, templateName); err != nil {
			errs = append(errs, err)
		}
	}
	if cluster != nil {
		if err := cluster.Stop(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func createDatabase(ctx context.Context, name, template string) error {
	createMu.Lock()
	defer createMu.Unlock()
	return admin(ctx, fmt.Sprintf("CREATE DATABASE %s TEMPLATE %s",
		pgx.Identifier{name}.Sanitize(), pgx.Identifier{template}.Sanitize()))
}

func dropDatabase(ctx context.Context, name string) error {
	// WITH (FORCE) (PostgreSQL 13+) ends sessions a test leaked.
	return admin(ctx, fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", pgx.Identifier{name}.Sanitize()))
}

// admin runs one statement on the server's admin database over a short-lived
// connection (CREATE/DROP DATABASE cannot run inside a transaction or from the
// database being dropped).
func admin(ctx context.Context, sql string) error {
	conn, err := pgx.Connect(ctx, serverURL)
	if err != nil {
		return fmt.Errorf("connect to admin database: %w", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, sql); err != nil {
		return fmt.Errorf("%s: %w", sql, err)
	}
	return nil
}

// withDatabase swaps the database name in a postgres URL.
func withDatabase(serverURL, db string) (string, error) {
	u, err := url.Parse(serverURL)
	if err != nil {
		return "", errors.New("DATABASE_URL is not a valid URL")
	}
	u.Path = "/" + db
	u.RawPath = ""
	return u.String(), nil
}

// uniqueName is a lowercase identifier unique across test binaries and
// tests, with a recognisable prefix so leftovers are easy to spot.
func uniqueName(kind string) string {
	return strings.Join([]string{"pgtest", kind, runID, randomHex(6)}, "_")
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on Linux.
	return hex.EncodeToString(b)
}
