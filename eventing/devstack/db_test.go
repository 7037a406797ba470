package devstack_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

func openDB(t *testing.T, url string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// waitProcessed waits until consumer has recorded n processed events.
func waitProcessed(t *testing.T, db *pgxpool.Pool, consumer string, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var got int
		if err := db.QueryRow(context.Background(), `SELECT count(*) FROM processed_events WHERE consumer = $1`, consumer).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s processed %d events, want %d", consumer, got, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
