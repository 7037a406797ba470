BEGIN;

CREATE TABLE slack_posts (
    dedup_key        text        PRIMARY KEY,
    channel_id       text        NOT NULL,
    thread_ts        text        NOT NULL DEFAULT '',
    claimed_at       timestamptz NOT NULL,
    first_claimed_at timestamptz NOT NULL,
    uncertain        boolean     NOT NULL DEFAULT false,
    ts               text,
    posted_at        timestamptz,
    CONSTRAINT slack_posts_ts_posted_at CHECK ((ts IS NULL) = (posted_at IS NULL))
);

COMMENT ON TABLE slack_posts IS 'Slack posts by our own dedup key: the intent is claimed before chat.postMessage, so a retry after a crash or an unknown outcome finds the post instead of making a second one.';
COMMENT ON COLUMN slack_posts.dedup_key IS 'The caller''s key for one logical message, e.g. runner-dm:<run id>; also sent as the message''s metadata.';
COMMENT ON COLUMN slack_posts.channel_id IS 'Where the message goes (a DM''s D channel for DMs).';
COMMENT ON COLUMN slack_posts.thread_ts IS 'The parent''s ts for a thread reply; empty for a top-level message.';
COMMENT ON COLUMN slack_posts.claimed_at IS 'When the current attempt claimed the key: its lease runs from here, and a takeover moves it.';
COMMENT ON COLUMN slack_posts.first_claimed_at IS 'When the key was first claimed: no post under it is older, so reconciliation reads Slack from here.';
COMMENT ON COLUMN slack_posts.uncertain IS 'A post was attempted and its outcome is unknown (timeout, reset, 5xx): the next attempt asks Slack before posting.';
COMMENT ON COLUMN slack_posts.ts IS 'The message''s Slack ts once Slack accepted it; NULL while the post is pending.';
COMMENT ON COLUMN slack_posts.posted_at IS 'When the post was recorded as accepted.';

COMMIT;
