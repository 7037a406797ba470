BEGIN;

CREATE TABLE processed_events (
    consumer     text        NOT NULL,
    ce_id        text        NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, ce_id)
);

COMMENT ON TABLE processed_events IS 'CloudEvent ids each consumer has handled, written with the effect so redeliveries are skipped.';

-- The retention sweep deletes old rows by processed_at.
CREATE INDEX processed_events_processed_at ON processed_events (processed_at);

COMMIT;
