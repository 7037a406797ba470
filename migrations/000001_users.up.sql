BEGIN;

CREATE TABLE users (
    user_id      text        PRIMARY KEY,
    team_id      text        NOT NULL,
    display_name text        NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE users IS 'Slack users CoffeeBuddy has seen, keyed by Slack user id, with the team they belong to.';

COMMIT;
