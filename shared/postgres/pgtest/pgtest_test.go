package pgtest_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/coffeebuddy/coffeebuddy/shared/postgres/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestNewIsMigratedAndIsolated(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a, b := pgtest.New(t), pgtest.New(t)
	if a.Name == b.Name || a.URL == b.URL {
		t.Fatalf("two New calls share database %q", a.Name)
	}

	var v int
	if err := a.Pool.QueryRow(ctx, `SELECT max(version) FROM schema_migrations`).Scan(&v); err != nil {
		t.Fatalf("New database is not migrated: %v", err)
	}
	if v == 0 {
		t.Fatal("schema_migrations is empty")
	}

	if _, err := a.Pool.Exec(ctx, `INSERT INTO users (user_id, team_id) VALUES ('U1', 'T1')`); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := b.Pool.QueryRow(ctx, `SELECT count(*) FROM users`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("a row written in one test database is visible in another (%d rows)", n)
	}
}

func TestNewEmptyHasNoTables(t *testing.T) {
	t.Parallel()
	db := pgtest.NewEmpty(t)
	var n int
	if err := db.Pool.QueryRow(context.Background(),
		`SELECT count(*) FROM pg_tables WHERE schemaname = 'public'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("NewEmpty database has %d tables, want 0", n)
	}
}

// TestCleanupDropsDatabase runs New in a subtest and checks, once the subtest
// (and so its cleanup) has finished, that its database is gone, even though
// the subtest left a connection open.
func TestCleanupDropsDatabase(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var name string
	t.Run("user", func(t *testing.T) {
		db := pgtest.New(t)
		name = db.Name
		leaked, err := pgx.Connect(ctx, db.URL)
		if err != nil {
			t.Fatal(err)
		}
		_ = leaked // left open on purpose: DROP … WITH (FORCE) must cope
	})

	admin, err := pgx.Connect(ctx, pgtest.Server(t))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	var exists bool
	if err := admin.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if exists {
		t.Errorf("database %s survived its test", name)
	}
	if !strings.HasPrefix(name, "pgtest_t_") {
		t.Errorf("database name %q lacks the pgtest_t_ prefix", name)
	}
}

// TestManyParallel creates databases concurrently, as a package full of
// parallel tests does.
func TestManyParallel(t *testing.T) {
	for i := range 8 {
		t.Run("db", func(t *testing.T) {
			t.Parallel()
			db := pgtest.New(t)
			if _, err := db.Pool.Exec(context.Background(),
				`INSERT INTO users (user_id, team_id) VALUES ($1, 'T1')`, fmt.Sprintf("U%d", i)); err != nil {
				t.Fatal(err)
			}
		})
	}
}
