package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/coffeebuddy/coffeebuddy/shared/audit"
	"github.com/coffeebuddy/coffeebuddy/shared/blocks"
	"github.com/coffeebuddy/coffeebuddy/shared/coffee"
	"github.com/coffeebuddy/coffeebuddy/shared/events"
	"github.com/coffeebuddy/coffeebuddy/shared/function"
	"github.com/coffeebuddy/coffeebuddy/shared/outbox"
	"github.com/coffeebuddy/coffeebuddy/shared/slackapi"
	"github.com/coffeebuddy/coffeebuddy/shared/store"
	"github.com/jackc/pgx/v5"
)

const (
	consumer = "run-cancel"
	source   = "/coffeebuddy/run-cancel"
)

// Publisher publishes committed outbox rows.
type Publisher interface {
	Publish(ctx context.Context, ids ...int64) error
}

// Handler cancels coffee runs.
type Handler struct {
	store  *store.Store
	outbox Publisher
	slack  *slackapi.Clients
	now    func() time.Time
}

// New returns the handler; now is the clock (time.Now in production).
func New(s *store.Store, p Publisher, c *slackapi.Clients, now func() time.Time) *Handler {
	return &Handler{store: s, outbox: p, slack: c, now: now}
}

// errRefused rolls back a cancel that was not allowed: nothing changed, and
// the event is recorded as processed only once the caller has been told.
var errRefused = errors.New("cancel refused")

// Handle cancels the channel's run for its initiator or runner: status,
// audit row and run.cancelled outbox event in one transaction, then the
// event is published. Anyone else, a completed run or no run at all gets an
// ephemeral answer through the command's response_url.
func (h *Handler) Handle(ctx context.Context, e event.Event) (*event.Event, error) {
	var cmd events.SlashCommand
	if err := e.DataAs(&cmd); err != nil {
		return nil, function.Permanentf("decode command: %w", err)
	}
	if cmd.TeamID == "" || cmd.ChannelID == "" || cmd.UserID == "" {
		return nil, function.Permanentf("command lacks team, channel or user")
	}
	reason := strings.TrimSpace(cmd.Text) // untrusted: stored verbatim, rendered escaped
	log := function.Logger(ctx).With("channel", cmd.ChannelID, "user", cmd.UserID)
	now := h.now().UTC()
	var run coffee.Run
	var refusal blocks.Ephemeral
	var outboxID int64
	dup, err := h.store.Once(ctx, consumer, e.ID(), func(tx pgx.Tx) error {
		var err error
		run, err = store.CancelRun(ctx, tx, cmd.TeamID, cmd.ChannelID, cmd.UserID, reason, now)
		if r, ok := blocks.CancelRefusal(err, run); ok {
			refusal = r
			return errRefused
		}
		if err != nil {
			return err
		}
		if err := audit.Record(ctx, tx, audit.Entry{
			EventType: audit.RunCancelled, ActorUserID: cmd.UserID, TeamID: run.TeamID, ChannelID: run.ChannelID,
			RunID: run.ID, CEID: e.ID(), Details: map[string]any{"by": cmd.UserID, "reason": reason},
		}); err != nil {
			return err
		}
		outboxID, err = outbox.Enqueue(ctx, tx, outbox.Message{
			Type: events.TypeRunCancelled, Source: source, Subject: run.ID.String(), Key: run.ID.String(),
			Data: events.RunCancelled{RunID: run.ID.String(), CancelledBy: cmd.UserID, Reason: reason},
		})
		return err
	})
	switch {
	case errors.Is(err, errRefused):
		return nil, h.refuse(ctx, e.ID(), cmd, refusal)
	case err != nil:
		return nil, fmt.Errorf("cancel run: %w", err)
	case dup:
		log.Info("duplicate delivery ignored")
		return nil, nil
	}
	log = log.With("run_id", run.ID)
	log.Info("run cancelled", "by", cmd.UserID)
	// Committed: a failed publish is left to the outbox sweep.
	if err := h.outbox.Publish(ctx, outboxID); err != nil {
		log.Warn("outbox publish deferred to the sweep", "err", err)
	}
	return nil, nil
}

// refuse tells the caller why nothing was cancelled, through the command's
// response_url, then records the event as processed so a redelivery does
// not tell them twice. A rate-limited answer is retried (nothing recorded
// yet, the retry decides afresh); one Slack refuses for good (an expired
// response_url) is logged and the event recorded.
func (h *Handler) refuse(ctx context.Context, ceID string, cmd events.SlashCommand, answer blocks.Ephemeral) error {
	log := function.Logger(ctx).With("channel", cmd.ChannelID, "user", cmd.UserID)
	if err := h.slack.Inform(ctx, log, "tell the caller why nothing was cancelled",
		slackapi.Answer{ResponseURL: cmd.ResponseURL, Channel: cmd.ChannelID, User: cmd.UserID},
		slackapi.Reply{Text: answer.Text}); err != nil {
		return err
	}
	if _, err := h.store.Once(ctx, consumer, ceID, func(pgx.Tx) error { return nil }); err != nil {
		return err
	}
	log.Info("cancel refused", "answer", answer.Text)
	return nil
}
