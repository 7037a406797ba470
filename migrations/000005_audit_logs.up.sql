BEGIN;

CREATE TABLE audit_logs (
    id            bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    occurred_at   timestamptz NOT NULL DEFAULT now(),
    event_type    text        NOT NULL,
    actor_user_id text,
    team_id       text,
    channel_id    text,
    run_id        uuid,
    ce_id         text,
    details       jsonb       NOT NULL DEFAULT '{}'
);

-- run_id has no foreign key on purpose: the audit trail outlives purged runs.
COMMENT ON TABLE audit_logs IS 'Append-only audit trail: one row per state change, written in the same transaction as the change.';

CREATE INDEX audit_logs_occurred_type ON audit_logs (occurred_at, event_type);
CREATE INDEX audit_logs_run ON audit_logs (run_id);

COMMIT;
