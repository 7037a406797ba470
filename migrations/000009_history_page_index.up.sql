BEGIN;
-- /coffee-history pages a channel's runs newest first. With id (the
-- tie-breaker) and the columns the page shows, a page is an index-only scan
-- whatever its depth. It replaces the narrower history index.
CREATE INDEX coffee_runs_channel_page ON coffee_runs (team_id, channel_id, created_at DESC, id) INCLUDE (status, runner_user_id);
DROP INDEX coffee_runs_channel_history;
COMMIT;
