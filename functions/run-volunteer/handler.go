package main

import (
	"context"
	"errors"
	"fmt"

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
	consumer = "run-volunteer"
	source   = "/coffeebuddy/run-volunteer"
)

// Publisher publishes committed outbox rows.
type Publisher interface {
	Publish(ctx context.Context, ids ...int64) error
}

// Handler records volunteers.
type Handler struct {
	store  *store.Store
	outbox Publisher
	slack  *slackapi.Clients
}

// New returns the handler.
func New(s *store.Store, p Publisher, sl *slackapi.Clients) *Handler {
	return &Handler{store: s, outbox: p, slack: sl}
}

// outcome is what the transaction found.
type outcome struct {
	run      coffee.Run
	set      bool // the clicker is now the volunteer
	closed   bool // the run no longer takes volunteers
	outboxID int64
}

// msgThanks answers the volunteer: the run message shows them to everyone,
// and the thread names them once, at last call.
const msgThanks = ":raising_hand: Thanks for volunteering! You're going: at last call you'll get everyone's order by DM."

// Handle makes the clicker the run's volunteer, with its audit row and the
// volunteer_set outbox event in the same transaction, then publishes it
// (volunteer-notify updates the run message). The volunteer is thanked
// where they clicked; a second volunteer, or a click on a closed run, gets
// an ephemeral note instead.
func (h *Handler) Handle(ctx context.Context, e event.Event) (*event.Event, error) {
	var act events.RunAction
	if err := e.DataAs(&act); err != nil {
		return nil, function.Permanentf("decode volunteer request: %w", err)
	}
	id, err := uuid.Parse(act.RunID)
	if err != nil {
		return nil, function.Permanentf("run id %q: %w", act.RunID, err)
	}
	if act.UserID == "" || act.ChannelID == "" {
		return nil, function.Permanentf("volunteer request lacks user or channel")
	}
	log := function.Logger(ctx).With("run_id", id, "user", act.UserID)
	var out outcome
	dup, err := h.store.Once(ctx, consumer, e.ID(), func(tx pgx.Tx) error {
		run, changed, err := store.SetVolunteer(ctx, tx, id, act.UserID)
		out = outcome{run: run}
		// Refusals are answered inside the transaction: if Slack rate
		// limits the answer or is down, nothing is recorded and the click
		// is retried rather than silently dropped; a permanent refusal is
		// logged and the click recorded (slackapi.Inform).
		if errors.Is(err, coffee.ErrNotActive) {
			out.closed = true
			return h.ephemeral(ctx, act, notOpen(run))
		}
		if err != nil {
			return err
		}
		if !changed {
			return h.ephemeral(ctx, act, alreadyTaken(run, act.UserID))
		}
		out.set = true
		if act.TeamID != "" && act.UserName != "" {
			if err := store.UpsertUser(ctx, tx, act.TeamID, act.UserID, act.UserName); err != nil {
				return err
			}
		}
		if err := audit.Record(ctx, tx, audit.Entry{
			EventType: audit.VolunteerSet, ActorUserID: act.UserID, TeamID: run.TeamID, ChannelID: run.ChannelID,
			RunID: run.ID, CEID: e.ID(),
		}); err != nil {
			return err
		}
		out.outboxID, err = outbox.Enqueue(ctx, tx, outbox.Message{
			Type: events.TypeVolunteerSet, Source: source, Subject: run.ID.String(), Key: run.ID.String(),
			Data: events.RunFact{RunID: run.ID.String(), UserID: act.UserID},
		})
		if err != nil {
			return err
		}
		return h.ephemeral(ctx, act, msgThanks)
	})
	switch {
	case errors.Is(err, coffee.ErrRunNotFound):
		return nil, function.Permanent(err)
	case err != nil:
		return nil, fmt.Errorf("set volunteer: %w", err)
	case dup:
		log.Info("duplicate delivery ignored")
		return nil, nil
	case out.set:
		log.Info("volunteer set")
		if err := h.outbox.Publish(ctx, out.outboxID); err != nil {
			log.Warn("outbox publish deferred to the sweep", "err", err)
		}
		return nil, nil
	}
	log.Info("volunteer not set", "status", out.run.Status, "volunteer", out.run.VolunteerUserID)
	return nil, nil
}

func alreadyTaken(run coffee.Run, user string) string {
	if run.VolunteerUserID == user {
		return "You already volunteered — thanks!"
	}
	return fmt.Sprintf("<@%s> already volunteered — thanks!", run.VolunteerUserID)
}

func notOpen(run coffee.Run) string {
	if run.Status == coffee.StatusCancelled {
		return "This run was cancelled."
	}
	return "This run has already closed, so it no longer takes volunteers."
}

// ephemeral answers the clicker where they clicked (the click's
// response_url).
func (h *Handler) ephemeral(ctx context.Context, act events.RunAction, text string) error {
	return h.slack.Inform(ctx, function.Logger(ctx), "answer the clicker",
		slackapi.Answer{ResponseURL: act.ResponseURL, Channel: act.ChannelID, User: act.UserID}, slackapi.Reply{Text: text})
}
