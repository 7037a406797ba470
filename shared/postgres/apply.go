package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// ApplySQL runs script (any number of statements) in one transaction on
// dbURL: all of it or, on the first error, none of it. The install applies
// the database roles script (deploy/postgres/roles.sql) this way after the
// migrations, on every install and upgrade, so such a script must be
// idempotent. name labels errors.
func ApplySQL(ctx context.Context, dbURL, name, script string) (err error) {
	defer wrap(&err, "apply "+name)
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // after Commit it is a no-op
	// No arguments: pgx sends the script with the simple protocol, so it may
	// hold several statements (and DO blocks).
	if _, err := tx.Exec(ctx, script); err != nil {
		return err
	}
	return tx.Commit(ctx)
}
