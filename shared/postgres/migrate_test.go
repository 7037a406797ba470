package postgres_test

import (
	"context"
	"errors"
	"io/fs"
	"regexp"
	"slices"
	"strconv"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/coffeebuddy/coffeebuddy/migrations"
	"github.com/coffeebuddy/coffeebuddy/shared/postgres"
	"github.com/coffeebuddy/coffeebuddy/shared/postgres/pgtest"
	"github.com/coffeebuddy/coffeebuddy/shared/postgres/schemadoc"
)

type migrationFile struct {
	version uint
	title   string
}

var upFile = regexp.MustCompile(`^(\d+)_(\w+)\.up\.sql$`)

// embeddedMigrations lists the migrations from migrations.FS, so adding one
// needs no test change.
func embeddedMigrations(t *testing.T) []migrationFile {
	t.Helper()
	entries, err := fs.ReadDir(migrations.FS, ".")
	if err != nil {
		t.Fatal(err)
	}
	var ms []migrationFile
	downs := map[string]bool{}
	for _, e := range entries {
		downs[e.Name()] = true
	}
	for _, e := range entries {
		m := upFile.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		v, err := strconv.ParseUint(m[1], 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		if !downs[m[1]+"_"+m[2]+".down.sql"] {
			t.Errorf("%s has no matching .down.sql", e.Name())
		}
		ms = append(ms, migrationFile{version: uint(v), title: m[2]})
	}
	slices.SortFunc(ms, func(a, b migrationFile) int { return int(a.version) - int(b.version) })
	if len(ms) == 0 {
		t.Fatal("no migrations embedded")
	}
	return ms
}

// TestMigrationWalk applies each migration in turn, then reverts them one at a
// time, then applies them all again. After every step the schema must equal
// the one seen at that version on the way up, which proves each down file
// drops exactly what its up file created.
func TestMigrationWalk(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.NewEmpty(t)
	ms := embeddedMigrations(t)

	snap := map[uint]string{0: snapshot(t, db.Pool)}
	// tableOf records the table named by a migration's title (000003_orders
	// → orders) when that migration created it.
	tableOf := map[uint]string{}

	assertState := func(t *testing.T, want uint) {
		t.Helper()
		v, dirty, err := postgres.Version(ctx, db.URL)
		if err != nil {
			t.Fatal(err)
		}
		if v != want || dirty {
			t.Fatalf("version = %d (dirty %v), want %d clean", v, dirty, want)
		}
		for mv, table := range tableOf {
			if got, wantExists := tableExists(t, db.Pool, table), mv <= want; got != wantExists {
				t.Errorf("at version %d: table %s exists = %v, want %v", want, table, got, wantExists)
			}
		}
		if s, ok := snap[want]; ok && snapshot(t, db.Pool) != s {
			t.Errorf("at version %d the schema differs from the one first seen at that version", want)
		}
	}

	prev := uint(0)
	for _, m := range ms {
		if tableExists(t, db.Pool, m.title) {
			t.Fatalf("table %s exists before migration %d", m.title, m.version)
		}
		if err := postgres.MigrateTo(ctx, db.URL, m.version); err != nil {
			t.Fatalf("up to %d: %v", m.version, err)
		}
		if tableExists(t, db.Pool, m.title) {
			tableOf[m.version] = m.title
		}
		s := snapshot(t, db.Pool)
		if s == snap[prev] {
			t.Errorf("migration %d_%s changed nothing", m.version, m.title)
		}
		snap[m.version] = s
		assertState(t, m.version)
		prev = m.version
	}
	if len(tableOf) == 0 {
		t.Error("no migration created the table its title names; the walk checked no tables")
	}

	for i := len(ms) - 1; i >= 0; i-- {
		target := uint(0)
		if i > 0 {
			target = ms[i-1].version
		}
		if err := postgres.MigrateDown(ctx, db.URL, 1); err != nil {
			t.Fatalf("down from %d: %v", ms[i].version, err)
		}
		assertState(t, target)
	}

	if err := postgres.MigrateUp(ctx, db.URL); err != nil {
		t.Fatalf("up again: %v", err)
	}
	assertState(t, ms[len(ms)-1].version)

	// Up to date: ErrNoChange is not an error.
	if err := postgres.MigrateUp(ctx, db.URL); err != nil {
		t.Fatalf("second up: %v", err)
	}
}

func TestMigrateDownStepsAndAll(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.NewEmpty(t)
	ms := embeddedMigrations(t)
	if len(ms) < 3 {
		t.Skip("needs at least 3 migrations")
	}

	if v, dirty, err := postgres.Version(ctx, db.URL); err != nil || v != 0 || dirty {
		t.Fatalf("fresh database: Version = %d, %v, %v; want 0, false, nil", v, dirty, err)
	}
	if err := postgres.MigrateUp(ctx, db.URL); err != nil {
		t.Fatal(err)
	}
	if err := postgres.MigrateDown(ctx, db.URL, 2); err != nil {
		t.Fatal(err)
	}
	if v, _, _ := postgres.Version(ctx, db.URL); v != ms[len(ms)-3].version {
		t.Fatalf("after down 2: version %d, want %d", v, ms[len(ms)-3].version)
	}
	if err := postgres.MigrateDown(ctx, db.URL, 0); err != nil {
		t.Fatal(err)
	}
	if v, _, _ := postgres.Version(ctx, db.URL); v != 0 {
		t.Fatalf("after down all: version %d, want 0", v)
	}
	// Already at the bottom: no change, no error.
	if err := postgres.MigrateDown(ctx, db.URL, 0); err != nil {
		t.Fatalf("down at version 0: %v", err)
	}
	if err := postgres.MigrateTo(ctx, db.URL, 0); err != nil {
		t.Fatalf("MigrateTo(0) at version 0: %v", err)
	}
}

func TestMigrateErrors(t *testing.T) {
	t.Parallel()
	db := pgtest.NewEmpty(t)

	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	if err := postgres.MigrateUp(cancelled, db.URL); !errors.Is(err, context.Canceled) {
		t.Errorf("MigrateUp with cancelled ctx = %v, want context.Canceled", err)
	}
	if err := postgres.MigrateUp(context.Background(), "mysql://x@localhost/db"); err == nil {
		t.Error("MigrateUp with a mysql URL succeeded")
	}
	if err := postgres.MigrateTo(context.Background(), db.URL, 999999); err == nil {
		t.Error("MigrateTo a missing version succeeded")
	}
}

func snapshot(t *testing.T, pool *pgxpool.Pool) string {
	t.Helper()
	s, err := schemadoc.Generate(context.Background(), pool)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func tableExists(t *testing.T, pool *pgxpool.Pool, name string) bool {
	t.Helper()
	var ok bool
	err := pool.QueryRow(context.Background(),
		`SELECT to_regclass('public.' || quote_ident($1)) IS NOT NULL`, name).Scan(&ok)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}
