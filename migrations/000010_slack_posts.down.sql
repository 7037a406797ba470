BEGIN;

DROP TABLE slack_posts;

COMMIT;
