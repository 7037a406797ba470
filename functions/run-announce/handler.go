package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/coffeebuddy/coffeebuddy/shared/audit"
	"github.com/coffeebuddy/coffeebuddy/shared/blocks"
	"github.com/coffeebuddy/coffeebuddy/shared/coffee"
	"github.com/coffeebuddy/coffeebuddy/shared/events"
	"github.com/coffeebuddy/coffeebuddy/shared/function"
	"github.com/coffeebuddy/coffeebuddy/shared/runmsg"
	"github.com/coffeebuddy/coffeebuddy/shared/slackapi"
	"github.com/coffeebuddy/coffeebuddy/shared/slackonce"
	"github.com/coffeebuddy/coffeebuddy/shared/store"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

const consumer = "run-announce"

// Handler announces runs.
type Handler struct {
	store *store.Store
	slack *slackapi.Clients
	once  *slackonce.Poster
	now   func() time.Time
}

// New returns the handler.
func New(s *store.Store, sl *slackapi.Clients) *Handler {
	return &Handler{store: s, slack: sl, once: &slackonce.Poster{DB: s.DB, Slack: sl}, now: time.Now}
}

// Handle posts the run message once (keyed "run-message:<run id>", so a
// retry after a crash between Slack accepting it and our commit finds it
// instead of posting again) and records its ts so later changes update it
// in place. In a public channel the app was never added to it joins first;
// where it cannot post at all (a private channel it is not in, an archived
// one) the run is abandoned and its initiator told why, through the
// command's response_url: a run nobody can see must not hold the channel.
func (h *Handler) Handle(ctx context.Context, e event.Event) (*event.Event, error) {
	var msg events.RunCreated
	if err := e.DataAs(&msg); err != nil {
		return nil, function.Permanentf("decode run.created: %w", err)
	}
	id, err := uuid.Parse(msg.RunID)
	if err != nil {
		return nil, function.Permanentf("run id %q: %w", msg.RunID, err)
	}
	log := function.Logger(ctx).With("run_id", id)
	run, err := store.GetRun(ctx, h.store.DB, id)
	if errors.Is(err, coffee.ErrRunNotFound) {
		return nil, function.Permanent(err)
	}
	if err != nil {
		return nil, err
	}
	if run.SlackMessageTS != "" {
		// Already announced (a redelivery after the post committed).
		log.Info("run already announced", "ts", run.SlackMessageTS)
		return nil, nil
	}
	orders, err := store.RunOrders(ctx, h.store.DB, run.ID)
	if err != nil {
		return nil, err
	}
	ts, posted, err := h.post(ctx, log, run, orders)
	if slackapi.IsPermanent(err) {
		return nil, h.abandon(ctx, log, e.ID(), run, msg.ResponseURL, err)
	}
	if err != nil {
		return nil, fmt.Errorf("post run message: %w", err)
	}
	dup, err := h.store.Once(ctx, consumer, e.ID(), func(tx pgx.Tx) error {
		if err := store.SetRunMessage(ctx, tx, run.ID, ts); err != nil {
			return err
		}
		return audit.Record(ctx, tx, audit.Entry{
			EventType: audit.RunAnnounced, TeamID: run.TeamID, ChannelID: run.ChannelID,
			RunID: run.ID, CEID: e.ID(), Details: map[string]any{"ts": ts},
		})
	})
	if err != nil {
		return nil, err
	}
	if !posted {
		// An earlier attempt posted the message as the run stood then;
		// orders confirmed since found no ts to update, so show them now.
		if _, err := runmsg.Refresh(ctx, h.store.DB, h.slack, run.ID); err != nil {
			log.Warn("run message found posted but not refreshed", "ts", ts, "err", err)
		}
	}
	log.Info("run announced", "ts", ts, "posted", posted, "duplicate", dup)
	return nil, nil
}

// post posts the run message. Slack refuses a bot that is not a member of a
// public channel (not_in_channel): it joins (conversations.join, scope
// channels:join) and posts again, as Slack apps do.
func (h *Handler) post(ctx context.Context, log *slog.Logger, run coffee.Run, orders []coffee.Order) (string, bool, error) {
	key := "run-message:" + run.ID.String()
	msg := blocks.Message{Text: blocks.RunMessageText(run, len(orders)), Blocks: blocks.RunMessage(run, orders)}
	ts, posted, err := h.once.Post(ctx, key, run.ChannelID, "", msg)
	if slackapi.Code(err) != "not_in_channel" {
		return ts, posted, err
	}
	cli, err := h.slack.Get()
	if err != nil {
		return "", false, err
	}
	if _, _, _, err := cli.JoinConversationContext(ctx, run.ChannelID); err != nil {
		return "", false, fmt.Errorf("conversations.join %s: %w", run.ChannelID, err)
	}
	log.Info("joined the channel to announce the run", "channel", run.ChannelID)
	return h.once.Post(ctx, key, run.ChannelID, "", msg)
}

// abandon cancels a run whose message Slack will not take, with its audit
// row, and tells the initiator why in the same transaction (a rate-limited
// answer retries the whole event; a refused one is logged).
func (h *Handler) abandon(ctx context.Context, log *slog.Logger, ceID string, run coffee.Run, responseURL string, cause error) error {
	code := slackapi.Code(cause)
	log.Warn("Slack refuses the run message; the run is abandoned", "channel", run.ChannelID, "slack_error", code, "err", cause)
	_, err := h.store.Once(ctx, consumer, ceID, func(tx pgx.Tx) error {
		_, err := store.AbandonRun(ctx, tx, run.ID, "CoffeeBuddy cannot post in this channel ("+code+")", h.now())
		if store.IsDone(err) {
			return nil // cancelled meanwhile: nothing holds the channel
		}
		if err != nil {
			return err
		}
		if err := audit.Record(ctx, tx, audit.Entry{
			EventType: audit.RunAbandoned, TeamID: run.TeamID, ChannelID: run.ChannelID, RunID: run.ID, CEID: ceID,
			Details: map[string]any{"slack_error": code},
		}); err != nil {
			return err
		}
		return h.slack.Inform(ctx, log, "tell the initiator why the run has no message",
			slackapi.Answer{ResponseURL: responseURL, Channel: run.ChannelID, User: run.InitiatorUserID},
			slackapi.Reply{Text: blocks.CannotPostNotice(code)})
	})
	return err
}
