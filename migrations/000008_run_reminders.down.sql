BEGIN;
DROP INDEX coffee_runs_reminder_due;
ALTER TABLE coffee_runs DROP COLUMN reminder_count;
COMMIT;
