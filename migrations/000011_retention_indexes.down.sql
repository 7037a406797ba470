BEGIN;
DROP INDEX slack_posts_posted_at;
DROP INDEX outbox_published_at;
COMMIT;
