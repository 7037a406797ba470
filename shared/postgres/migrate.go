package postgres

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/golang-migrate/migrate/v4"
	_ "github.com/golang-migrate/migrate/v4/database/pgx/v5" // registers the pgx5:// driver
	"github.com/golang-migrate/migrate/v4/source/iofs"

	"github.com/coffeebuddy/coffeebuddy/migrations"
)

// MigrateUp applies every pending migration. Being already up to date is not
// an error.
func MigrateUp(ctx context.Context, dbURL string) (err error) {
	defer wrap(&err, "migrate up")
	return withMigrate(ctx, dbURL, func(m *migrate.Migrate) error { return m.Up() })
}

// MigrateDown reverts steps migrations, or all of them when steps <= 0.
func MigrateDown(ctx context.Context, dbURL string, steps int) (err error) {
	defer wrap(&err, "migrate down")
	return withMigrate(ctx, dbURL, func(m *migrate.Migrate) error {
		if steps <= 0 {
			return m.Down()
		}
		return m.Steps(-steps)
	})
}

// MigrateTo moves the schema up or down to exactly version; 0 means no
// migrations applied (an empty schema).
func MigrateTo(ctx context.Context, dbURL string, version uint) (err error) {
	defer wrap(&err, fmt.Sprintf("migrate to %d", version))
	return withMigrate(ctx, dbURL, func(m *migrate.Migrate) error {
		if version == 0 {
			// golang-migrate has no migration numbered 0 to target.
			return m.Down()
		}
		return m.Migrate(version)
	})
}

// Force records version as applied and clean without running anything:
// the way out of a dirty state. A migration that failed half-way was
// rolled back (each runs as one transaction) but left its version marked
// dirty, and golang-migrate refuses to go on until an operator has looked:
// force the version before it, then migrate up again. 0 means none applied.
func Force(ctx context.Context, dbURL string, version uint) (err error) {
	defer wrap(&err, fmt.Sprintf("migrate force %d", version))
	return withMigrate(ctx, dbURL, func(m *migrate.Migrate) error {
		if version == 0 {
			return m.Force(-1) // golang-migrate's "no version"
		}
		return m.Force(int(version))
	})
}

// Version reports the applied migration version (0 when none) and whether
// the last migration failed half-way (dirty).
func Version(ctx context.Context, dbURL string) (version uint, dirty bool, err error) {
	defer wrap(&err, "migrate version")
	err = withMigrate(ctx, dbURL, func(m *migrate.Migrate) error {
		v, d, err := m.Version()
		if errors.Is(err, migrate.ErrNilVersion) {
			return nil
		}
		version, dirty = v, d
		return err
	})
	return version, dirty, err
}

// withMigrate builds a migrate instance over the embedded migrations, runs fn
// and closes it. golang-migrate has no context support, so a cancelled ctx
// asks it to stop gracefully after the migration in progress.
func withMigrate(ctx context.Context, dbURL string, fn func(*migrate.Migrate) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	murl, err := migrateURL(dbURL)
	if err != nil {
		return err
	}
	src, err := iofs.New(migrations.FS, ".")
	if err != nil {
		return fmt.Errorf("open embedded migrations: %w", err)
	}
	m, err := migrate.NewWithSourceInstance("iofs", src, murl)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}

	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		select {
		case <-ctx.Done():
			select {
			case m.GracefulStop <- true:
			default:
			}
		case <-done:
		}
	}()

	runErr := fn(m)
	close(done)
	<-stopped
	srcErr, dbErr := m.Close()

	if errors.Is(runErr, migrate.ErrNoChange) {
		runErr = nil
	}
	if runErr == nil && ctx.Err() != nil {
		// Stopped early: report it rather than pretend the target was reached.
		runErr = ctx.Err()
	}
	return errors.Join(runErr, srcErr, dbErr)
}

// migrateURL turns a postgres:// or postgresql:// URL into the pgx5:// form
// golang-migrate's pgx v5 driver is registered under.
func migrateURL(dbURL string) (string, error) {
	u, err := url.Parse(dbURL)
	if err != nil {
		// Do not echo the URL: it may carry a password.
		return "", errors.New("invalid database URL")
	}
	switch strings.ToLower(u.Scheme) {
	case "postgres", "postgresql", "pgx5":
		u.Scheme = "pgx5"
		return u.String(), nil
	default:
		return "", fmt.Errorf("unsupported database URL scheme %q (want postgres://)", u.Scheme)
	}
}

func wrap(errp *error, op string) {
	if *errp != nil {
		*errp = fmt.Errorf("postgres: %s: %w", op, *errp)
	}
}
