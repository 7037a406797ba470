package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// TryRunLock takes the session-level advisory lock named name on a
// connection of its own, for work that spans many transactions (a batched
// retention run) and must not run twice at once. ok is false when another
// session holds it. release unlocks and returns the connection; if the
// unlock fails the connection is closed instead, which releases the lock
// too, so a lock never leaks into the pool.
func TryRunLock(ctx context.Context, db *pgxpool.Pool, name string) (release func(), ok bool, err error) {
	conn, err := db.Acquire(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("store: run lock %s: %w", name, err)
	}
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock(hashtextextended($1, 0))`, name).Scan(&ok); err != nil {
		conn.Release()
		return nil, false, fmt.Errorf("store: run lock %s: %w", name, err)
	}
	if !ok {
		conn.Release()
		return nil, false, nil
	}
	return func() {
		// The run's own context may be done by now; unlocking must not be.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if _, err := conn.Exec(ctx, `SELECT pg_advisory_unlock(hashtextextended($1, 0))`, name); err != nil {
			_ = conn.Conn().Close(ctx)
		}
		conn.Release()
	}, true, nil
}
