BEGIN;

DROP TABLE processed_events;

COMMIT;
