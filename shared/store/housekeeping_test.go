package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/coffeebuddy/coffeebuddy/shared/postgres/pgtest"
	"github.com/coffeebuddy/coffeebuddy/shared/store"
)

// TestRetentionDeletes checks each retention delete: only rows strictly
// older than the cut-off go, oldest first and at most limit per call, and
// pending rows (unpublished outbox rows, unposted claims) stay at any age.
func TestRetentionDeletes(t *testing.T) {
	cutoff := time.Date(2026, 10, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		delete func(ctx context.Context, q store.Querier, before time.Time, limit int) (int64, error)
		// insert adds a row keyed $1 whose retention timestamp is $2
		// (NULL: a pending row).
		insert string
		exists string
	}{
		{
			name:   "processed_events",
			delete: store.DeleteProcessedEvents,
			insert: `INSERT INTO processed_events (consumer, ce_id, processed_at) VALUES ('c', $1, $2)`,
			exists: `SELECT count(*) FROM processed_events WHERE ce_id = $1`,
		},
		{
			name:   "outbox",
			delete: store.DeletePublishedOutbox,
			insert: `INSERT INTO outbox (ce_id, ce_type, ce_source, topic, partition_key, data, created_at, published_at)
				VALUES ($1, 't', '/s', 'coffee.orders', 'k', '{}', '2020-01-01', $2)`,
			exists: `SELECT count(*) FROM outbox WHERE ce_id = $1`,
		},
		{
			name:   "slack_posts",
			delete: store.DeletePostedSlackPosts,
			insert: `INSERT INTO slack_posts (dedup_key, channel_id, claimed_at, first_claimed_at, ts, posted_at)
				VALUES ($1, 'C1', '2020-01-01', '2020-01-01', CASE WHEN $2::timestamptz IS NULL THEN NULL ELSE '1.000100' END, $2)`,
			exists: `SELECT count(*) FROM slack_posts WHERE dedup_key = $1`,
		},
	}
	at := func(d time.Duration) *time.Time { t := cutoff.Add(d); return &t }
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			db := pgtest.New(t)
			ctx := context.Background()
			rows := []struct {
				key string
				at  *time.Time
				// gone after the first call, and after the later ones.
				first, second bool
			}{
				// Not in age order, so "oldest first" is not insertion order.
				{"just-before", at(-time.Microsecond), false, true},
				{"after", at(time.Hour), false, false},
				{"oldest", at(-300 * 24 * time.Hour), true, true},
				{"pending", nil, false, false},
				{"at-cutoff", at(0), false, false},
				{"older", at(-2 * time.Hour), true, true},
			}
			for _, r := range rows {
				if r.key == "pending" && tc.name == "processed_events" {
					continue // processed_at is never NULL
				}
				if _, err := db.Pool.Exec(ctx, tc.insert, r.key, r.at); err != nil {
					t.Fatalf("insert %s: %v", r.key, err)
				}
			}
			// With limit 2: the two oldest, then the last expired one, then
			// nothing.
			for call, want := range []int64{2, 1, 0} {
				n, err := tc.delete(ctx, db.Pool, cutoff, 2)
				if err != nil || n != want {
					t.Fatalf("call %d: deleted %d, %v; want %d", call+1, n, err, want)
				}
				for _, r := range rows {
					if r.key == "pending" && tc.name == "processed_events" {
						continue
					}
					gone := r.first
					if call > 0 {
						gone = r.second
					}
					var c int
					if err := db.Pool.QueryRow(ctx, tc.exists, r.key).Scan(&c); err != nil {
						t.Fatal(err)
					}
					if (c == 0) != gone {
						t.Errorf("after call %d: %s gone = %v, want %v", call+1, r.key, c == 0, gone)
					}
				}
			}
		})
	}
}
