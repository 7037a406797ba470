// Package store is the PostgreSQL side of the coffee domain: the
// processed-events transaction every consumer runs its effect in, and the
// run queries. SQL is inline and parameterised.
package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Querier is what the queries need: a pool or a transaction.
type Querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Store wraps the pool.
type Store struct{ DB *pgxpool.Pool }

// New returns a Store over db.
func New(db *pgxpool.Pool) *Store { return &Store{DB: db} }

// Once runs fn in one transaction together with recording that consumer has
// processed the CloudEvent ceID. If it was already processed, fn is not run
// and duplicate is true: redeliveries are acknowledged and do nothing.
func (s *Store) Once(ctx context.Context, consumer, ceID string, fn func(tx pgx.Tx) error) (duplicate bool, err error) {
	err = pgx.BeginFunc(ctx, s.DB, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx,
			`INSERT INTO processed_events (consumer, ce_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`,
			consumer, ceID)
		if err != nil {
			return fmt.Errorf("record processed event: %w", err)
		}
		if tag.RowsAffected() == 0 {
			duplicate = true
			return nil
		}
		return fn(tx)
	})
	if err != nil {
		return false, fmt.Errorf("store: %s %s: %w", consumer, ceID, err)
	}
	return duplicate, nil
}

// Processed reports whether consumer has already handled CloudEvent ceID
// (recorded by Once). Notify functions ask before a Slack side effect, so a
// redelivery that Once would skip also posts nothing.
func Processed(ctx context.Context, q Querier, consumer, ceID string) (bool, error) {
	var done bool
	if err := q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM processed_events WHERE consumer = $1 AND ce_id = $2)`,
		consumer, ceID).Scan(&done); err != nil {
		return false, fmt.Errorf("store: processed %s %s: %w", consumer, ceID, err)
	}
	return done, nil
}

// uniqueViolation reports a unique-constraint failure on the named
// constraint or index.
func uniqueViolation(err error, name string) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505" && pgErr.ConstraintName == name
}
