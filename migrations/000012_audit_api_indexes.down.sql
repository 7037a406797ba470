BEGIN;
DROP INDEX audit_logs_team_occurred;
DROP INDEX audit_logs_channel_occurred;
DROP INDEX audit_logs_actor_occurred;
DROP INDEX audit_logs_type_occurred;
DROP INDEX audit_logs_occurred_id;
COMMIT;
