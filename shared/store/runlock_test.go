package store_test

import (
	"context"
	"testing"

	"github.com/coffeebuddy/coffeebuddy/shared/postgres/pgtest"
	"github.com/coffeebuddy/coffeebuddy/shared/store"
)

// TestTryRunLock: one holder per name at a time, across connections; a
// release (also with the holder's context done) frees it, and the
// connection goes back to the pool without the lock.
func TestTryRunLock(t *testing.T) {
	db := pgtest.New(t)
	ctx, cancel := context.WithCancel(context.Background())
	release, ok, err := store.TryRunLock(ctx, db.Pool, "job-a")
	if err != nil || !ok {
		t.Fatalf("first TryRunLock = %v, %v", ok, err)
	}
	if _, ok, err := store.TryRunLock(context.Background(), db.Pool, "job-a"); err != nil || ok {
		t.Fatalf("second TryRunLock while held = %v, %v; want not ok", ok, err)
	}
	other, ok, err := store.TryRunLock(context.Background(), db.Pool, "job-b")
	if err != nil || !ok {
		t.Fatalf("another name = %v, %v; want ok", ok, err)
	}
	other()
	cancel() // the run's context ends before it releases
	release()
	again, ok, err := store.TryRunLock(context.Background(), db.Pool, "job-a")
	if err != nil || !ok {
		t.Fatalf("TryRunLock after release = %v, %v", ok, err)
	}
	again()
	var held int
	if err := db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'`).Scan(&held); err != nil || held != 0 {
		t.Errorf("%d advisory locks left after the releases (%v)", held, err)
	}
}
