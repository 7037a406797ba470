BEGIN;
CREATE INDEX coffee_runs_channel_history ON coffee_runs (team_id, channel_id, created_at DESC);
DROP INDEX coffee_runs_channel_page;
COMMIT;
