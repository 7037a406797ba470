BEGIN;

DROP TABLE audit_logs;

COMMIT;
