BEGIN;

CREATE TABLE user_preferences (
    user_id         text        NOT NULL,
    drink           text        NOT NULL,
    size            text        NOT NULL,
    order_count     integer     NOT NULL DEFAULT 0 CHECK (order_count >= 0),
    last_ordered_at timestamptz NOT NULL,
    PRIMARY KEY (user_id, drink, size)
);

COMMENT ON TABLE user_preferences IS 'Per-user drink and size counts used to suggest a usual order; purged after the retention period.';

-- The retention purge deletes by last_ordered_at.
CREATE INDEX user_preferences_last_ordered ON user_preferences (last_ordered_at);

COMMIT;
