package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/coffeebuddy/coffeebuddy/shared/audit"
	"github.com/coffeebuddy/coffeebuddy/shared/coffee"
	"github.com/coffeebuddy/coffeebuddy/shared/events"
	"github.com/coffeebuddy/coffeebuddy/shared/function"
	"github.com/coffeebuddy/coffeebuddy/shared/outbox"
	"github.com/coffeebuddy/coffeebuddy/shared/slackapi"
	"github.com/coffeebuddy/coffeebuddy/shared/store"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

const (
	consumer = "run-complete"
	source   = "/coffeebuddy/run-complete"
)

// Messages the clicker sees.
const (
	msgDone             = "Marked complete. Thanks for the coffee run! :tada:"
	msgAlreadyCompleted = "Already marked complete. Thanks!"
	msgCancelled        = "This run was cancelled, so there is nothing to complete."
	msgStillOpen        = "This run is still taking orders: it can be marked complete once it closes."
	msgNoRunner         = "Nobody was assigned to this run, so there is nothing to complete."
)

// Publisher publishes committed outbox rows.
type Publisher interface {
	Publish(ctx context.Context, ids ...int64) error
}

// Handler completes runs.
type Handler struct {
	store  *store.Store
	outbox Publisher
	slack  *slackapi.Clients
	now    func() time.Time
}

// New returns the handler.
func New(s *store.Store, p Publisher, sl *slackapi.Clients, now func() time.Time) *Handler {
	return &Handler{store: s, outbox: p, slack: sl, now: now}
}

// Handle completes the run if the clicker is its runner: status completed
// and completed_at (UTC), the run_completed audit row and the run.completed
// outbox event in one transaction, then publishes the event
// (completion-notify tells the thread). Anyone else gets an ephemeral
// error and nothing changes; a second click only gets a friendly note.
// The clicker is answered where they clicked (the DM).
func (h *Handler) Handle(ctx context.Context, e event.Event) (*event.Event, error) {
	var act events.RunAction
	if err := e.DataAs(&act); err != nil {
		return nil, function.Permanentf("decode complete request: %w", err)
	}
	id, err := uuid.Parse(act.RunID)
	if err != nil {
		return nil, function.Permanentf("run id %q: %w", act.RunID, err)
	}
	if act.UserID == "" || act.ChannelID == "" {
		return nil, function.Permanentf("complete request lacks user or channel")
	}
	log := function.Logger(ctx).With("run_id", id, "user", act.UserID)
	var run coffee.Run
	var refused error
	var outboxID int64
	dup, err := h.store.Once(ctx, consumer, e.ID(), func(tx pgx.Tx) error {
		var err error
		run, err = store.CompleteRun(ctx, tx, id, act.UserID, h.now())
		if errors.Is(err, coffee.ErrNotRunner) || errors.Is(err, coffee.ErrAlreadyCompleted) || errors.Is(err, coffee.ErrNotActive) {
			refused = err
			return h.answer(ctx, act, refusal(run, refused))
		}
		if err != nil {
			return err
		}
		if err := audit.Record(ctx, tx, audit.Entry{
			EventType: audit.RunCompleted, ActorUserID: act.UserID, TeamID: run.TeamID, ChannelID: run.ChannelID,
			RunID: run.ID, CEID: e.ID(), Details: map[string]any{"completed_at": run.CompletedAt},
		}); err != nil {
			return err
		}
		outboxID, err = outbox.Enqueue(ctx, tx, outbox.Message{
			Type: events.TypeRunCompleted, Source: source, Subject: run.ID.String(), Key: run.ID.String(),
			Data: events.RunFact{RunID: run.ID.String(), UserID: act.UserID},
		})
		if err != nil {
			return err
		}
		return h.answer(ctx, act, msgDone)
	})
	switch {
	case errors.Is(err, coffee.ErrRunNotFound):
		return nil, function.Permanent(err)
	case err != nil:
		return nil, fmt.Errorf("complete run: %w", err)
	case dup:
		log.Info("duplicate delivery ignored")
		return nil, nil
	}
	if refused != nil {
		log.Info("completion refused", "reason", refused, "status", run.Status, "runner", run.RunnerUserID)
		return nil, nil
	}
	log.Info("run completed")
	if err := h.outbox.Publish(ctx, outboxID); err != nil {
		log.Warn("outbox publish deferred to the sweep", "err", err)
	}
	return nil, nil
}

// answer tells the clicker the outcome, through the click's response_url
// (it reaches them wherever they clicked: a DM forwarded to them included),
// inside the transaction that records it: if Slack rate limits it or is
// down, nothing is committed and the click is retried, so the answer is
// not lost. A permanent refusal (the clicker cannot be reached there) is
// logged and counted, and the click is recorded all the same.
func (h *Handler) answer(ctx context.Context, act events.RunAction, text string) error {
	return h.slack.Inform(ctx, function.Logger(ctx), "answer the clicker",
		slackapi.Answer{ResponseURL: act.ResponseURL, Channel: act.ChannelID, User: act.UserID}, slackapi.Reply{Text: text})
}

func refusal(run coffee.Run, err error) string {
	switch {
	case errors.Is(err, coffee.ErrNotRunner):
		return fmt.Sprintf("Only <@%s> can mark this run complete.", run.RunnerUserID)
	case errors.Is(err, coffee.ErrAlreadyCompleted):
		return msgAlreadyCompleted
	case run.Status == coffee.StatusCancelled:
		return msgCancelled
	case run.Status == coffee.StatusActive:
		return msgStillOpen
	}
	return msgNoRunner
}
