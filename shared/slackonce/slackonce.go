// Package slackonce makes a Slack post at most once per dedup key.
//
// A notify function posts to Slack and then commits "done" in PostgreSQL. A
// crash, kill or timeout between "Slack accepted the post" and that commit
// made the retry post again, and two concurrent deliveries of one event both
// posted. Poster records the intent first: it claims the key in slack_posts
// before chat.postMessage and records the message's ts after. Every post
// carries the key in its message metadata, so an attempt that finds a claim
// whose outcome nobody learnt asks Slack (conversations.history or
// conversations.replies) whether the message is there before posting.
//
// A key names one logical message (e.g. "runner-dm:<run id>") and always the
// same conversation. Ephemeral messages cannot be posted this way: Slack
// keeps no history of them to ask.
package slackonce

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/slack-go/slack"

	"github.com/coffeebuddy/coffeebuddy/shared/blocks"
	"github.com/coffeebuddy/coffeebuddy/shared/breaker"
	"github.com/coffeebuddy/coffeebuddy/shared/slackapi"
)

// EventType is the metadata event_type of every post; its event_payload is
// {"key": <dedup key>}.
const EventType = "coffeebuddy_post"

// DefaultLease is how long a claim protects a post in flight when
// Poster.Lease is zero. It must outlast a Slack call (the client gives up
// after 10 s): a claim older than the lease is taken to be abandoned.
const DefaultLease = 30 * time.Second

const (
	// clockMargin widens the window searched in Slack: a message's ts is
	// Slack's clock, the claim time ours.
	clockMargin = time.Minute
	// pageSize is the page asked of conversations.history/replies.
	pageSize = 200
	// claimTries bounds the claim loop when a claim vanishes between our
	// insert and our read (its post definitely failed and was released).
	claimTries = 3
	// bookkeepingTimeout bounds the writes after a Slack call, which run
	// even when the caller's context has ended: a post Slack took must be
	// recorded, a failed one released.
	bookkeepingTimeout = 5 * time.Second
)

// ErrInFlight means another attempt holds the key and may be posting right
// now. It is retryable: the broker redelivers later, and that attempt finds
// the post made (or the claim abandoned, and takes it over). It is "busy"
// (function.IsBusy): the runtime answers 409 and logs it at info.
var ErrInFlight error = inFlight{}

type inFlight struct{}

func (inFlight) Error() string { return "slackonce: another attempt is posting this message" }
func (inFlight) Busy() bool    { return true }

// DB is what Poster needs of PostgreSQL (a *pgxpool.Pool).
type DB interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Poster posts messages once per key. Its zero Lease and Now mean
// DefaultLease and time.Now.
type Poster struct {
	DB    DB
	Slack *slackapi.Clients
	Lease time.Duration
	Now   func() time.Time
}

func (p *Poster) lease() time.Duration {
	if p.Lease > 0 {
		return p.Lease
	}
	return DefaultLease
}

// now is the clock at PostgreSQL's precision, so a claim time read back
// compares equal to the one written.
func (p *Poster) now() time.Time {
	now := time.Now
	if p.Now != nil {
		now = p.Now
	}
	return now().UTC().Truncate(time.Microsecond)
}

// Post posts msg to channel (in thread threadTS when non-empty) unless the
// post keyed key was already made. It returns the message's ts and whether
// this call posted it; posted is false when an earlier attempt did, found in
// slack_posts or, after a crash, in Slack itself. An error wrapping
// ErrInFlight means another attempt is posting; an error wrapping
// *slack.RateLimitedError means Slack refused it for now (the claim is
// released, so a retry posts at once).
func (p *Poster) Post(ctx context.Context, key, channel, threadTS string, msg blocks.Message) (ts string, posted bool, err error) {
	if key == "" || channel == "" {
		return "", false, fmt.Errorf("slackonce: post needs a key and a channel (key %q, channel %q)", key, channel)
	}
	cli, err := p.Slack.Get()
	if err != nil {
		return "", false, fmt.Errorf("slackonce: %s: %w", key, err)
	}
	for range claimTries {
		c, err := p.claim(ctx, key, channel, threadTS)
		if errors.Is(err, errGone) {
			continue
		}
		if err != nil {
			return "", false, err
		}
		if c.ts != "" {
			return c.ts, false, nil
		}
		return p.settle(ctx, cli, key, c, msg)
	}
	return "", false, fmt.Errorf("slackonce: %s: %w", key, ErrInFlight)
}

// settle does what claim c holds the key for: reconcile when asked to, then
// post. It must end well within the lease, or another attempt could take
// the claim over while a post is still on its way; so the Slack calls get
// half the lease.
func (p *Poster) settle(ctx context.Context, cli *slack.Client, key string, c claimed, msg blocks.Message) (string, bool, error) {
	sctx, cancel := context.WithTimeout(ctx, p.lease()/2)
	defer cancel()
	if !c.reconcileFrom.IsZero() {
		ts, found, err := p.find(sctx, cli, key, c.channel, c.threadTS, c.reconcileFrom)
		if err != nil {
			// Nothing was posted by us; the next attempt must ask again.
			return "", false, errors.Join(fmt.Errorf("slackonce: %s: reconcile: %w", key, err), p.setUncertain(ctx, key, c.claimedAt))
		}
		if found {
			return ts, false, p.record(ctx, key, ts)
		}
	}
	ts, err := p.post(sctx, cli, key, c, msg)
	return ts, err == nil || ts != "", err
}

// DM opens the DM with user (conversations.open is idempotent) and posts msg
// there once per key. A DM already recorded is answered from slack_posts
// without calling Slack.
func (p *Poster) DM(ctx context.Context, key, user string, msg blocks.Message) (channel, ts string, posted bool, err error) {
	err = p.DB.QueryRow(ctx, `SELECT channel_id, ts FROM slack_posts WHERE dedup_key = $1 AND ts IS NOT NULL`, key).Scan(&channel, &ts)
	switch {
	case err == nil:
		return channel, ts, false, nil
	case !errors.Is(err, pgx.ErrNoRows):
		return "", "", false, fmt.Errorf("slackonce: %s: %w", key, err)
	}
	cli, err := p.Slack.Get()
	if err != nil {
		return "", "", false, fmt.Errorf("slackonce: %s: %w", key, err)
	}
	ch, _, _, err := cli.OpenConversationContext(ctx, &slack.OpenConversationParameters{Users: []string{user}})
	if err != nil {
		return "", "", false, fmt.Errorf("slackonce: %s: conversations.open with %s: %w", key, user, err)
	}
	ts, posted, err = p.Post(ctx, key, ch.ID, "", msg)
	return ch.ID, ts, posted, err
}

// Post is a message posted under a key.
type Post struct {
	Key, Channel, TS string
}

// Posted returns the posts made under any of keys (those whose post Slack
// accepted), so a later change can update them in place.
func (p *Poster) Posted(ctx context.Context, keys ...string) ([]Post, error) {
	rows, err := p.DB.Query(ctx, `SELECT dedup_key, channel_id, ts FROM slack_posts
		WHERE dedup_key = ANY($1) AND ts IS NOT NULL ORDER BY posted_at`, keys)
	if err != nil {
		return nil, fmt.Errorf("slackonce: posted: %w", err)
	}
	posts, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Post, error) {
		var x Post
		return x, r.Scan(&x.Key, &x.Channel, &x.TS)
	})
	if err != nil {
		return nil, fmt.Errorf("slackonce: posted: %w", err)
	}
	return posts, nil
}

// claimed is what claim found: a post already made (ts), or a claim this
// attempt now holds (claimedAt) on channel/threadTS, to be reconciled with
// Slack first when reconcileFrom is set.
type claimed struct {
	ts                string
	claimedAt         time.Time
	channel, threadTS string
	reconcileFrom     time.Time
}

// errGone: the claim disappeared between the insert and the read.
var errGone = errors.New("slackonce: claim released meanwhile")

// claim takes the key, or reports the post made, or ErrInFlight.
func (p *Poster) claim(ctx context.Context, key, channel, threadTS string) (claimed, error) {
	now := p.now()
	var at time.Time
	err := p.DB.QueryRow(ctx, `
		INSERT INTO slack_posts (dedup_key, channel_id, thread_ts, claimed_at, first_claimed_at)
		VALUES ($1, $2, $3, $4, $4)
		ON CONFLICT (dedup_key) DO NOTHING
		RETURNING claimed_at`, key, channel, threadTS, now).Scan(&at)
	if err == nil {
		return claimed{claimedAt: at, channel: channel, threadTS: threadTS}, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return claimed{}, fmt.Errorf("slackonce: %s: claim: %w", key, err)
	}
	var row struct {
		channel, threadTS, ts string
		claimedAt, first      time.Time
		uncertain             bool
	}
	err = p.DB.QueryRow(ctx, `
		SELECT channel_id, thread_ts, claimed_at, first_claimed_at, uncertain, coalesce(ts, '')
		FROM slack_posts WHERE dedup_key = $1`, key).
		Scan(&row.channel, &row.threadTS, &row.claimedAt, &row.first, &row.uncertain, &row.ts)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return claimed{}, errGone
	case err != nil:
		return claimed{}, fmt.Errorf("slackonce: %s: read claim: %w", key, err)
	case row.ts != "":
		return claimed{ts: row.ts}, nil
	case !row.uncertain && now.Sub(row.claimedAt) < p.lease():
		return claimed{}, fmt.Errorf("slackonce: %s: %w", key, ErrInFlight)
	}
	// The claim is abandoned (lease over) or its post's outcome unknown:
	// take it over, unless another attempt just did. The new claim is
	// certain again: this attempt reconciles before it posts, and the lease
	// keeps others off meanwhile.
	tag, err := p.DB.Exec(ctx, `
		UPDATE slack_posts SET claimed_at = $3, uncertain = false
		WHERE dedup_key = $1 AND claimed_at = $2 AND ts IS NULL`, key, row.claimedAt, now)
	if err != nil {
		return claimed{}, fmt.Errorf("slackonce: %s: take over claim: %w", key, err)
	}
	if tag.RowsAffected() == 0 {
		return claimed{}, fmt.Errorf("slackonce: %s: %w", key, ErrInFlight)
	}
	return claimed{claimedAt: now, channel: row.channel, threadTS: row.threadTS, reconcileFrom: row.first}, nil
}

// post makes the post under claim c and records its outcome.
func (p *Poster) post(ctx context.Context, cli *slack.Client, key string, c claimed, msg blocks.Message) (string, error) {
	opts := append(msg.Options(), slack.MsgOptionMetadata(slack.SlackMetadata{
		EventType: EventType, EventPayload: map[string]any{"key": key},
	}))
	if c.threadTS != "" {
		opts = append(opts, slack.MsgOptionTS(c.threadTS))
	}
	_, ts, err := cli.PostMessageContext(ctx, c.channel, opts...)
	if err != nil {
		perr := fmt.Errorf("slackonce: %s: chat.postMessage: %w", key, err)
		if notTaken(err) {
			return "", errors.Join(perr, p.release(ctx, key, c.claimedAt))
		}
		return "", errors.Join(perr, p.setUncertain(ctx, key, c.claimedAt))
	}
	return ts, p.record(ctx, key, ts)
}

// notTaken reports a post Slack certainly did not make: a rate limit, an
// error answer (ok=false), or a call the breaker never let out. Anything
// else (timeout, reset connection, 5xx) may have been made.
func notTaken(err error) bool {
	var rl *slack.RateLimitedError
	var answer slack.SlackErrorResponse
	var status slack.StatusCodeError
	return errors.As(err, &rl) || errors.As(err, &answer) || errors.Is(err, breaker.ErrOpen) ||
		(errors.As(err, &status) && status.Code == http.StatusTooManyRequests)
}

// bookkeeping is the context of the writes that follow a Slack call.
func bookkeeping(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), bookkeepingTimeout)
}

// record stores the ts of the post Slack accepted.
func (p *Poster) record(ctx context.Context, key, ts string) error {
	ctx, cancel := bookkeeping(ctx)
	defer cancel()
	if _, err := p.DB.Exec(ctx, `UPDATE slack_posts SET ts = $2, posted_at = $3 WHERE dedup_key = $1 AND ts IS NULL`,
		key, ts, p.now()); err != nil {
		// The claim stays pending; once its lease is over, a retry finds
		// the post in Slack.
		return fmt.Errorf("slackonce: %s: record ts %s: %w", key, ts, err)
	}
	return nil
}

// release drops our claim after a post Slack refused, so a retry posts at
// once.
func (p *Poster) release(ctx context.Context, key string, claimedAt time.Time) error {
	ctx, cancel := bookkeeping(ctx)
	defer cancel()
	if _, err := p.DB.Exec(ctx, `DELETE FROM slack_posts WHERE dedup_key = $1 AND claimed_at = $2 AND ts IS NULL`,
		key, claimedAt); err != nil {
		return fmt.Errorf("slackonce: %s: release claim: %w", key, err)
	}
	return nil
}

// setUncertain marks our claim as "ask Slack first", so a retry need not
// wait for the lease.
func (p *Poster) setUncertain(ctx context.Context, key string, claimedAt time.Time) error {
	ctx, cancel := bookkeeping(ctx)
	defer cancel()
	if _, err := p.DB.Exec(ctx, `UPDATE slack_posts SET uncertain = true WHERE dedup_key = $1 AND claimed_at = $2 AND ts IS NULL`,
		key, claimedAt); err != nil {
		return fmt.Errorf("slackonce: %s: mark uncertain: %w", key, err)
	}
	return nil
}

// find looks in Slack for the message posted under key since `since`: in
// the thread threadTS, or among channel's top-level messages.
func (p *Poster) find(ctx context.Context, cli *slack.Client, key, channel, threadTS string, since time.Time) (string, bool, error) {
	oldest := slackTS(since.Add(-clockMargin))
	cursor := ""
	for {
		var msgs []slack.Message
		next := ""
		if threadTS != "" {
			m, more, c, err := cli.GetConversationRepliesContext(ctx, &slack.GetConversationRepliesParameters{
				ChannelID: channel, Timestamp: threadTS, Oldest: oldest, Inclusive: true,
				IncludeAllMetadata: true, Limit: pageSize, Cursor: cursor,
			})
			if err != nil {
				return "", false, fmt.Errorf("conversations.replies: %w", err)
			}
			if msgs = m; more {
				next = c
			}
		} else {
			res, err := cli.GetConversationHistoryContext(ctx, &slack.GetConversationHistoryParameters{
				ChannelID: channel, Oldest: oldest, Inclusive: true,
				IncludeAllMetadata: true, Limit: pageSize, Cursor: cursor,
			})
			if err != nil {
				return "", false, fmt.Errorf("conversations.history: %w", err)
			}
			if msgs = res.Messages; res.HasMore {
				next = res.ResponseMetaData.NextCursor
			}
		}
		for _, m := range msgs {
			if m.Metadata.EventType == EventType && m.Metadata.EventPayload["key"] == key {
				return m.Timestamp, true, nil
			}
		}
		if next == "" {
			return "", false, nil
		}
		cursor = next
	}
}

// slackTS formats t as a Slack timestamp.
func slackTS(t time.Time) string {
	us := t.UnixMicro()
	return fmt.Sprintf("%d.%06d", us/1_000_000, us%1_000_000)
}

// Keys of the runner's DMs, shared by the functions that post them and the
// one that updates them when the run completes.

// RunnerDMKey names the DM a runner gets when assigned.
func RunnerDMKey(run uuid.UUID) string { return "runner-dm:" + run.String() }

// RunnerReminderKey names the n-th reminder DM (n counts from 1).
func RunnerReminderKey(run uuid.UUID, n int) string {
	return fmt.Sprintf("runner-remind:%s:%d", run, n)
}
