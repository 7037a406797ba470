package store

import (
	"context"
	"fmt"
	"time"
)

// Retention deletes for the bookkeeping tables (the housekeeping function).
// Each deletes at most limit rows, oldest first, and returns how many went:
// the caller bounds one run's work and leaves the rest to the next. Each
// outer DELETE repeats the age predicate, so a row changed after the
// subquery picked it (e.g. a slack_posts claim reset to pending) is
// re-checked on its current version and kept.

// DeleteProcessedEvents deletes processed-event dedup rows recorded before
// before.
func DeleteProcessedEvents(ctx context.Context, q Querier, before time.Time, limit int) (int64, error) {
	return deleted(ctx, q, "delete processed events", `
		DELETE FROM processed_events
		WHERE (consumer, ce_id) IN (
			SELECT consumer, ce_id FROM processed_events
			WHERE processed_at < $1 ORDER BY processed_at LIMIT $2)
		AND processed_at < $1`, before, limit)
}

// DeletePublishedOutbox deletes outbox rows published before before. Rows
// not yet published are never deleted, however old: the sweep still owes
// them to Kafka.
func DeletePublishedOutbox(ctx context.Context, q Querier, before time.Time, limit int) (int64, error) {
	return deleted(ctx, q, "delete published outbox", `
		DELETE FROM outbox
		WHERE id IN (
			SELECT id FROM outbox
			WHERE published_at < $1 ORDER BY published_at LIMIT $2)
		AND published_at < $1`, before, limit)
}

// DeletePostedSlackPosts deletes slack_posts rows whose post Slack accepted
// before before. Pending claims (posted_at NULL) are never deleted, however
// old: a retry needs them to find out whether its message was posted.
func DeletePostedSlackPosts(ctx context.Context, q Querier, before time.Time, limit int) (int64, error) {
	return deleted(ctx, q, "delete posted slack posts", `
		DELETE FROM slack_posts
		WHERE dedup_key IN (
			SELECT dedup_key FROM slack_posts
			WHERE posted_at < $1 ORDER BY posted_at LIMIT $2)
		AND posted_at < $1`, before, limit)
}

// deleted runs one capped retention DELETE and returns the rows it removed.
func deleted(ctx context.Context, q Querier, what, sql string, before time.Time, limit int) (int64, error) {
	tag, err := q.Exec(ctx, sql, before.UTC(), limit)
	if err != nil {
		return 0, fmt.Errorf("store: %s: %w", what, err)
	}
	return tag.RowsAffected(), nil
}
