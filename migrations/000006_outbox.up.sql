BEGIN;

CREATE TABLE outbox (
    id            bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ce_id         text        NOT NULL UNIQUE,
    ce_type       text        NOT NULL,
    ce_source     text        NOT NULL,
    ce_subject    text        NOT NULL DEFAULT '',
    topic         text        NOT NULL,
    partition_key text        NOT NULL,
    data          jsonb       NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    published_at  timestamptz,
    attempts      integer     NOT NULL DEFAULT 0
);

COMMENT ON TABLE outbox IS 'Transactional outbox: CloudEvents written with the state change and published to Kafka by the relay.';

-- The relay reads unpublished rows in id order; the partial index stays small.
CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at IS NULL;

COMMIT;
