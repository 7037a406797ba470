BEGIN;
-- How many reminder DMs the runner has had; the reminder tick sends one.
ALTER TABLE coffee_runs ADD COLUMN reminder_count integer NOT NULL DEFAULT 0 CHECK (reminder_count >= 0);
-- The reminder tick scans assigned, unfinished runs by their last DM time.
CREATE INDEX coffee_runs_reminder_due ON coffee_runs (reminder_sent_at) WHERE status = 'closed' AND runner_user_id IS NOT NULL;
COMMIT;
