BEGIN;

CREATE TABLE coffee_runs (
    id                  uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    team_id             text        NOT NULL,
    channel_id          text        NOT NULL,
    initiator_user_id   text        NOT NULL,
    status              text        NOT NULL CHECK (status IN ('active', 'closed', 'completed', 'cancelled')),
    last_call_at        timestamptz NOT NULL,
    last_call_warned_at timestamptz,
    volunteer_user_id   text,
    runner_user_id      text,
    assignment_reason   text,
    slack_message_ts    text,
    reminder_sent_at    timestamptz,
    closed_at           timestamptz,
    completed_at        timestamptz,
    cancelled_at        timestamptz,
    cancelled_by        text,
    cancel_reason       text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE coffee_runs IS 'One coffee run per /coffee: its channel, last-call time, lifecycle status and the assigned runner.';

-- At most one active run per channel; the database, not the handlers, enforces it
-- so concurrent /coffee commands cannot both win.
CREATE UNIQUE INDEX coffee_runs_one_active_per_channel ON coffee_runs (team_id, channel_id) WHERE status = 'active';
CREATE INDEX coffee_runs_status_created_at ON coffee_runs (status, created_at);
CREATE INDEX coffee_runs_channel_history ON coffee_runs (team_id, channel_id, created_at DESC);
-- The last-call sweep only scans active runs.
CREATE INDEX coffee_runs_due ON coffee_runs (last_call_at) WHERE status = 'active';
-- Fair runner assignment looks at who completed runs recently.
CREATE INDEX coffee_runs_runner_completed ON coffee_runs (runner_user_id, completed_at) WHERE status = 'completed';

COMMIT;
