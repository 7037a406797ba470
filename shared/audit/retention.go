package audit

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// RetentionDone is written once per audit-retention tick: how many rows
// went, the cut-off, the batches and how long it took.
const RetentionDone = "audit_retention"

// Querier is what the retention delete needs: a pool, so that every batch
// is its own statement and so its own short transaction. (A transaction
// works too; tests use one to hold a batch's locks open.)
type Querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Limits bound one retention run. The first batch always runs, so every
// run makes progress; after it, a run stops at whichever limit comes
// first and leaves the rest to the next tick.
type Limits struct {
	// Batch is the most rows one DELETE statement removes. Small enough
	// that a statement takes milliseconds and its WAL is a few MB.
	Batch int
	// MaxRows is the most rows one run removes.
	MaxRows int64
	// MaxDuration is how long a run keeps starting batches.
	MaxDuration time.Duration
}

// DefaultLimits are what the audit-retention function runs with. In the
// benchmark (ADR 0010: 10 million rows on a busy 2-core box) batches of
// 5,000 deleted about 216,000 rows a second, each statement 20–30 ms,
// while audit writers waited no longer than without it. So 2 million rows
// is about 10 s of work: the first run at that size (2.5 million expired)
// takes two ticks, a day's rows (about 83,000) half a second. MaxDuration
// bounds a run on a much slower database.
var DefaultLimits = Limits{Batch: 5_000, MaxRows: 2_000_000, MaxDuration: 3 * time.Minute}

// Deletion is what one run did.
type Deletion struct {
	Deleted int64
	Batches int
	// Capped is true when a limit stopped the run after a full batch, so
	// expired rows may remain; the next tick continues with them.
	Capped bool
	Took   time.Duration
}

// batchSQL deletes the oldest rows older than $2, at most $3, starting at
// occurred_at $1: each batch resumes where the previous one ended instead
// of walking the index from the start over entries the previous batches
// just deleted (dead until vacuum). Ties on occurred_at (rows written in
// one transaction share now()) straddling a batch boundary are simply
// found again by >=. = ANY(ARRAY(...)) makes the delete a primary-key
// lookup of the chosen ids whatever the LIMIT's estimate. The outer
// occurred_at < $2 changes nothing on today's table, but on one
// partitioned by occurred_at it is what confines the delete to the old
// partitions (without it every batch scanned all of them: ADR 0010).
const batchSQL = `
	WITH gone AS (
		DELETE FROM audit_logs
		WHERE id = ANY (ARRAY(
			SELECT id FROM audit_logs
			WHERE occurred_at >= $1 AND occurred_at < $2
			ORDER BY occurred_at
			LIMIT $3))
		AND occurred_at < $2
		RETURNING occurred_at
	)
	SELECT count(*), max(occurred_at) FROM gone`

// DeleteExpired deletes audit rows that occurred before before, oldest
// first, in batches of lim.Batch rows, each its own statement. Writers of
// audit rows are never waited for and never wait: a DELETE takes the same
// table lock as their INSERTs (ROW EXCLUSIVE, which does not conflict with
// itself) and row locks only on rows nobody else touches.
//
// It stops when no expired row is left or a limit is reached, or with the
// context's error between batches. The Deletion says what was done, also
// when an error is returned.
func DeleteExpired(ctx context.Context, q Querier, before time.Time, lim Limits) (d Deletion, err error) {
	start := time.Now()
	defer func() {
		d.Took = time.Since(start)
		if err != nil {
			err = fmt.Errorf("audit: delete rows before %s (%d deleted in %d batches): %w",
				before.UTC().Format(time.RFC3339Nano), d.Deleted, d.Batches, err)
		}
	}()
	if lim.Batch <= 0 {
		return d, fmt.Errorf("batch size %d", lim.Batch)
	}
	from := pgtype.Timestamptz{InfinityModifier: pgtype.NegativeInfinity, Valid: true}
	for {
		if err := ctx.Err(); err != nil {
			return d, err
		}
		limit := lim.Batch
		if lim.MaxRows > 0 {
			limit = int(min(int64(limit), lim.MaxRows-d.Deleted))
		}
		var n int64
		var last pgtype.Timestamptz
		if err := q.QueryRow(ctx, batchSQL, from, before.UTC(), limit).Scan(&n, &last); err != nil {
			return d, err
		}
		d.Batches++
		d.Deleted += n
		if n < int64(limit) {
			return d, nil // nothing older is left
		}
		from = last
		if (lim.MaxRows > 0 && d.Deleted >= lim.MaxRows) || (lim.MaxDuration > 0 && time.Since(start) >= lim.MaxDuration) {
			d.Capped = true
			return d, nil
		}
	}
}
