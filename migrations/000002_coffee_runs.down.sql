BEGIN;

-- Dropping the table drops its indexes too.
DROP TABLE coffee_runs;

COMMIT;
