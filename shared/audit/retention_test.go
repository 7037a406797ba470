package audit_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/coffeebuddy/coffeebuddy/shared/audit"
	"github.com/coffeebuddy/coffeebuddy/shared/postgres/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// cutoff is at PostgreSQL's microsecond precision, so rows can sit exactly
// on it.
var cutoff = time.Date(2026, 9, 1, 2, 0, 0, 0, time.UTC)

// seed inserts n rows of eventType, one second apart, the newest at newest.
func seed(t *testing.T, pool *pgxpool.Pool, eventType string, newest time.Time, n int) {
	t.Helper()
	if _, err := pool.Exec(context.Background(), `
		INSERT INTO audit_logs (occurred_at, event_type, ce_id)
		SELECT $1::timestamptz - (g - 1) * interval '1 second', $2, $2 || '-' || g
		FROM generate_series(1, $3) g`, newest, eventType, n); err != nil {
		t.Fatal(err)
	}
}

func count(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// record writes one audit row the way every function does: in its own
// transaction, committed.
func record(ctx context.Context, pool *pgxpool.Pool, ceID string) error {
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		return audit.Record(ctx, tx, audit.Entry{EventType: audit.OrderPlaced, ActorUserID: "U1", CEID: ceID})
	})
}

// TestDeleteExpiredBoundaries: only rows strictly older than the cut-off
// go, whatever the batch size, and the Deletion counts them and the
// statements.
func TestDeleteExpiredBoundaries(t *testing.T) {
	rows := []struct {
		key  string
		at   time.Time
		gone bool
	}{
		{"newer", cutoff.Add(time.Hour), false},
		{"just-newer", cutoff.Add(time.Microsecond), false},
		{"exactly", cutoff, false}, // as old as the retention, not older
		{"just-older", cutoff.Add(-time.Microsecond), true},
		{"older", cutoff.Add(-24 * time.Hour), true},
		{"oldest", cutoff.Add(-400 * 24 * time.Hour), true},
		{"same-instant-1", cutoff.Add(-time.Minute), true}, // one transaction's rows share now()
		{"same-instant-2", cutoff.Add(-time.Minute), true},
		{"same-instant-3", cutoff.Add(-time.Minute), true},
	}
	for _, batch := range []int{1, 2, 5, 100} {
		t.Run(fmt.Sprintf("batch %d", batch), func(t *testing.T) {
			db := pgtest.New(t)
			ctx := context.Background()
			for _, r := range rows {
				if _, err := db.Pool.Exec(ctx, `INSERT INTO audit_logs (occurred_at, event_type, ce_id) VALUES ($1, 'order_placed', $2)`, r.at, r.key); err != nil {
					t.Fatal(err)
				}
			}
			d, err := audit.DeleteExpired(ctx, db.Pool, cutoff, audit.Limits{Batch: batch})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range rows {
				if got := count(t, db.Pool, `SELECT count(*) FROM audit_logs WHERE ce_id = $1`, r.key) == 0; got != r.gone {
					t.Errorf("%s (%s): gone = %v, want %v", r.key, r.at.Format(time.RFC3339Nano), got, r.gone)
				}
			}
			// 6 expired rows: full batches, then one that is not full.
			if d.Deleted != 6 || d.Batches != 6/batch+1 || d.Capped {
				t.Errorf("Deletion = %+v, want 6 deleted in %d batches, not capped", d, 6/batch+1)
			}
			again, err := audit.DeleteExpired(ctx, db.Pool, cutoff, audit.Limits{Batch: batch})
			if err != nil || again.Deleted != 0 || again.Batches != 1 {
				t.Errorf("second run = %+v, %v; want nothing deleted in one batch", again, err)
			}
		})
	}
}

// TestDeleteExpiredLimits: a run stops at MaxRows or MaxDuration after a
// full batch and says it was capped; the next run goes on from there.
func TestDeleteExpiredLimits(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	seed(t, db.Pool, "old", cutoff.Add(-time.Hour), 10)

	d, err := audit.DeleteExpired(ctx, db.Pool, cutoff, audit.Limits{Batch: 3, MaxRows: 7})
	if err != nil {
		t.Fatal(err)
	}
	if d.Deleted != 7 || d.Batches != 3 || !d.Capped { // 3 + 3 + 1
		t.Errorf("MaxRows 7: %+v, want 7 deleted in 3 batches, capped", d)
	}
	// The oldest went first: the 3 left are the newest.
	if n := count(t, db.Pool, `SELECT count(*) FROM audit_logs WHERE ce_id IN ('old-1', 'old-2', 'old-3')`); n != 3 {
		t.Errorf("%d of the 3 newest rows left, want 3", n)
	}

	// The first batch always runs, however short the time limit.
	d, err = audit.DeleteExpired(ctx, db.Pool, cutoff, audit.Limits{Batch: 2, MaxDuration: time.Nanosecond})
	if err != nil || d.Deleted != 2 || d.Batches != 1 || !d.Capped {
		t.Errorf("MaxDuration 1ns: %+v, %v; want one full batch, capped", d, err)
	}
	d, err = audit.DeleteExpired(ctx, db.Pool, cutoff, audit.DefaultLimits)
	if err != nil || d.Deleted != 1 || d.Capped {
		t.Errorf("default limits: %+v, %v; want the last row, not capped", d, err)
	}
	if _, err := audit.DeleteExpired(ctx, db.Pool, cutoff, audit.Limits{}); err == nil {
		t.Error("a zero batch size was accepted")
	}
}

// cancelAfter cancels the run's context once n batches have returned.
type cancelAfter struct {
	q      audit.Querier
	n      int
	cancel context.CancelFunc
	calls  int
}

func (c *cancelAfter) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	c.calls++
	if c.calls == c.n {
		defer c.cancel()
	}
	return c.q.QueryRow(ctx, sql, args...)
}

// TestDeleteExpiredStopsBetweenBatches: a cancelled context (a shutting
// down function) stops the run before its next batch, and the Deletion
// still counts what the committed batches removed.
func TestDeleteExpiredStopsBetweenBatches(t *testing.T) {
	db := pgtest.New(t)
	seed(t, db.Pool, "old", cutoff.Add(-time.Hour), 10)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d, err := audit.DeleteExpired(ctx, &cancelAfter{q: db.Pool, n: 2, cancel: cancel}, cutoff, audit.Limits{Batch: 3})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if d.Deleted != 6 || d.Batches != 2 {
		t.Errorf("Deletion = %+v, want the 2 batches' 6 rows", d)
	}
	if n := count(t, db.Pool, `SELECT count(*) FROM audit_logs`); n != 4 {
		t.Errorf("%d rows left, want 4", n)
	}
}

// lockWaiters counts backends waiting for a heavyweight lock on audit_logs.
func lockWaiters(t *testing.T, pool *pgxpool.Pool) int64 {
	return count(t, pool, `SELECT count(*) FROM pg_locks WHERE relation = 'audit_logs'::regclass AND NOT granted`)
}

// TestBatchDoesNotBlockAuditInserts holds a batch's transaction open (its
// table lock and its row locks) and writes audit rows meanwhile, as every
// function does: they commit. The same check with the ACCESS EXCLUSIVE
// lock that DROP or DETACH PARTITION takes on a partitioned parent shows
// the insert waiting, so the check can tell.
func TestBatchDoesNotBlockAuditInserts(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	seed(t, db.Pool, "old", cutoff.Add(-time.Hour), 100)

	tx, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	d, err := audit.DeleteExpired(ctx, tx, cutoff, audit.Limits{Batch: 60})
	if err != nil || d.Deleted != 100 {
		t.Fatalf("delete in tx: %+v, %v", d, err)
	}
	var held int64
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM pg_locks WHERE pid = pg_backend_pid()
		AND relation = 'audit_logs'::regclass AND mode = 'RowExclusiveLock' AND granted`).Scan(&held); err != nil || held != 1 {
		t.Fatalf("the open delete holds %d ROW EXCLUSIVE locks on audit_logs (%v), want 1", held, err)
	}
	// A deadlock guard, not a performance bound: a blocked insert would
	// wait here until the delete committed, which it does not until after.
	insCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for i := range 3 {
		if err := record(insCtx, db.Pool, fmt.Sprintf("during-%d", i)); err != nil {
			t.Fatalf("audit insert while a delete batch is open: %v", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if n := count(t, db.Pool, `SELECT count(*) FROM audit_logs`); n != 3 {
		t.Errorf("%d rows after the commit, want the 3 inserted ones", n)
	}

	// Control: under ACCESS EXCLUSIVE the same insert waits for the lock.
	lock, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lock.Exec(ctx, `LOCK TABLE audit_logs IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- record(insCtx, db.Pool, "under-access-exclusive") }()
	for lockWaiters(t, db.Pool) == 0 {
		select {
		case err := <-done:
			t.Fatalf("insert finished under ACCESS EXCLUSIVE (%v): the check cannot see blocking", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	_ = lock.Rollback(ctx)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// countingQuerier counts the batches a run has finished.
type countingQuerier struct {
	q       audit.Querier
	batches atomic.Int64
}

func (c *countingQuerier) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	return countedRow{c.q.QueryRow(ctx, sql, args...), &c.batches}
}

type countedRow struct {
	pgx.Row
	n *atomic.Int64
}

func (r countedRow) Scan(dest ...any) error {
	defer r.n.Add(1)
	return r.Row.Scan(dest...)
}

// TestInsertsProgressDuringLongDelete: while a long batched delete runs
// (2,000 statements), writers keep committing audit rows: each of them
// finishes inserts between the delete's first and last batch, and none of
// their rows is deleted. No timing is asserted; the figures are in the
// benchmark.
func TestInsertsProgressDuringLongDelete(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	const expired, batch, writers = 2000, 1, 3
	seed(t, db.Pool, "old", cutoff.Add(-time.Hour), expired)
	// The writers' rows are new (now()), and the cut-off is in the past.

	q := &countingQuerier{q: db.Pool}
	stop := make(chan struct{})
	var during [writers]int64 // inserts begun and committed between batch 1 and the last
	var wg sync.WaitGroup
	var insertErr atomic.Value
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				began := q.batches.Load()
				if err := record(ctx, db.Pool, fmt.Sprintf("w%d-%d", w, i)); err != nil {
					insertErr.Store(err)
					return
				}
				if began >= 1 && q.batches.Load() < expired/batch {
					during[w]++
				}
			}
		}()
	}
	d, err := audit.DeleteExpired(ctx, q, cutoff, audit.Limits{Batch: batch})
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if err, _ := insertErr.Load().(error); err != nil {
		t.Fatalf("an audit insert failed during the delete: %v", err)
	}
	if d.Deleted != expired || d.Batches != expired/batch+1 {
		t.Errorf("Deletion = %+v, want %d rows in %d batches", d, expired, expired/batch+1)
	}
	for w, n := range during {
		if n == 0 {
			t.Errorf("writer %d committed no audit row while the delete ran", w)
		}
	}
	written := count(t, db.Pool, `SELECT count(*) FROM audit_logs WHERE ce_id LIKE 'w%'`)
	if left := count(t, db.Pool, `SELECT count(*) FROM audit_logs`); left != written {
		t.Errorf("%d rows left, want exactly the %d the writers added", left, written)
	}
	t.Logf("writers committed %v audit rows during the %d-batch delete (%s)", during, d.Batches, d.Took)
}
