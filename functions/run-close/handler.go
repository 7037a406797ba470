package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/coffeebuddy/coffeebuddy/shared/closing"
	"github.com/coffeebuddy/coffeebuddy/shared/coffee"
	"github.com/coffeebuddy/coffeebuddy/shared/events"
	"github.com/coffeebuddy/coffeebuddy/shared/function"
	"github.com/coffeebuddy/coffeebuddy/shared/slackapi"
	"github.com/coffeebuddy/coffeebuddy/shared/store"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

const (
	consumer = "run-close"
	source   = "/coffeebuddy/run-close"
)

// Handler closes runs early on the initiator's *Close now*.
type Handler struct {
	store  *store.Store
	closer *closing.Closer
	slack  *slackapi.Clients
	now    func() time.Time
}

// New returns the handler.
func New(s *store.Store, c *closing.Closer, sl *slackapi.Clients, now func() time.Time) *Handler {
	return &Handler{store: s, closer: c, slack: sl, now: now}
}

// Handle closes the run through closing.Close (assignment, audit and the
// run.closed outbox event in one transaction) when the clicker started it.
// Anyone else is told, in an ephemeral message, who can; nothing changes.
//
// A click on a run that is no longer open (a double click, or a stale
// message) tells the clicker it is already closed: Slack shows no progress
// for a button, so silence would look like a lost click.
func (h *Handler) Handle(ctx context.Context, e event.Event) (*event.Event, error) {
	var act events.RunAction
	if err := e.DataAs(&act); err != nil {
		return nil, function.Permanentf("decode close request: %w", err)
	}
	id, err := uuid.Parse(act.RunID)
	if err != nil {
		return nil, function.Permanentf("run id %q: %w", act.RunID, err)
	}
	if act.UserID == "" || act.ChannelID == "" {
		return nil, function.Permanentf("close request lacks user or channel")
	}
	log := function.Logger(ctx).With("run_id", id, "user", act.UserID)
	run, err := store.GetRun(ctx, h.store.DB, id)
	if errors.Is(err, coffee.ErrRunNotFound) {
		return nil, function.Permanent(err)
	}
	if err != nil {
		return nil, err
	}
	if act.UserID != run.InitiatorUserID {
		return nil, h.refuse(ctx, e.ID(), act, fmt.Sprintf("Only <@%s> can close this run early.", run.InitiatorUserID), "not the initiator")
	}
	if run.Status != coffee.StatusActive {
		return nil, h.refuse(ctx, e.ID(), act, notOpen(run), "already "+string(run.Status))
	}
	res, err := h.closer.Close(ctx, consumer, e.ID(), id, act.UserID, h.now().UTC(), log)
	switch {
	case err != nil:
		return nil, fmt.Errorf("close run: %w", err)
	case res.Closed:
		log.Info("run closed early", "runner", res.Assignment.RunnerUserID)
	case res.Run.ID == uuid.Nil:
		log.Info("duplicate delivery ignored")
	default:
		// Closed by last call between our read and the close: the run is
		// closed either way, which the thread tells everyone.
		log.Info("run already closed", "status", res.Run.Status)
	}
	return nil, nil
}

// refuse answers a click that closes nothing, once per click: the answer
// goes out before the click is recorded, so a rate-limited post is retried
// rather than lost, while one Slack refuses for good is logged and the
// click recorded (slackapi.Inform).
func (h *Handler) refuse(ctx context.Context, ceID string, act events.RunAction, text, why string) error {
	done, err := store.Processed(ctx, h.store.DB, consumer, ceID)
	if err != nil || done {
		return err
	}
	if err := h.ephemeral(ctx, act, text); err != nil {
		return err // retried: nothing recorded yet
	}
	if _, err := h.store.Once(ctx, consumer, ceID, func(pgx.Tx) error { return nil }); err != nil {
		return err
	}
	function.Logger(ctx).Info("close refused: "+why, "user", act.UserID)
	return nil
}

func notOpen(run coffee.Run) string {
	if run.Status == coffee.StatusCancelled {
		return "This run was cancelled."
	}
	return "This run is already closed."
}

// ephemeral answers the clicker where they clicked (the click's
// response_url).
func (h *Handler) ephemeral(ctx context.Context, act events.RunAction, text string) error {
	return h.slack.Inform(ctx, function.Logger(ctx), "answer the clicker",
		slackapi.Answer{ResponseURL: act.ResponseURL, Channel: act.ChannelID, User: act.UserID}, slackapi.Reply{Text: text})
}
