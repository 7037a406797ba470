BEGIN;
-- The audit API (functions/audit-api) pages audit_logs in (occurred_at, id)
-- order within a time range, optionally filtered, with a keyset cursor
-- "(occurred_at, id) > (…)" and a LIMIT. Each index below lets one filter
-- shape read exactly the page it returns, in order, whatever the range
-- (no sort, no scan of the rows it skips). See docs/adr/0009-audit-api.md.
--
-- IF NOT EXISTS: on a large live table an operator can build these first
-- with CREATE INDEX CONCURRENTLY under the same names (this transactional
-- migration would block audit inserts while it builds), and the migration
-- then only records the version.

-- No filter, or filters too common to have their own index: the range and
-- the keyset cursor are one index condition, rows come out in order.
CREATE INDEX IF NOT EXISTS audit_logs_occurred_id ON audit_logs (occurred_at, id);

-- event_type (one type: an ordered range scan; several: one range per type,
-- merged by a sort of only the matching rows).
CREATE INDEX IF NOT EXISTS audit_logs_type_occurred ON audit_logs (event_type, occurred_at, id);

-- Actor, channel, team: the columns are NULL for system events (ticks,
-- housekeeping), which a filter on them never returns, so the indexes are
-- partial and smaller. An equality filter implies IS NOT NULL, so the
-- planner uses them for any value.
CREATE INDEX IF NOT EXISTS audit_logs_actor_occurred ON audit_logs (actor_user_id, occurred_at, id) WHERE actor_user_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS audit_logs_channel_occurred ON audit_logs (channel_id, occurred_at, id) WHERE channel_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS audit_logs_team_occurred ON audit_logs (team_id, occurred_at, id) WHERE team_id IS NOT NULL;

-- run_id keeps audit_logs_run (000005): a run has a few dozen rows, read
-- whole and sorted.
COMMIT;
