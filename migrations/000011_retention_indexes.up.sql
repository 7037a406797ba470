BEGIN;
-- The housekeeping function deletes, daily, outbox rows published more than
-- 7 days ago and slack_posts rows posted more than 30 days ago, oldest first
-- and a bounded batch at a time. Without these the delete would scan and sort
-- both whole tables every day. Partial: unpublished rows and unposted claims
-- are never deleted, so they need no entry (the relay has its own index).
-- processed_events already has processed_events_processed_at.
CREATE INDEX outbox_published_at ON outbox (published_at) WHERE published_at IS NOT NULL;
CREATE INDEX slack_posts_posted_at ON slack_posts (posted_at) WHERE posted_at IS NOT NULL;
COMMIT;
