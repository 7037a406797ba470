package main

import (
	"context"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/coffeebuddy/coffeebuddy/shared/blocks"
	"github.com/coffeebuddy/coffeebuddy/shared/coffee"
	"github.com/coffeebuddy/coffeebuddy/shared/events"
	"github.com/coffeebuddy/coffeebuddy/shared/function"
	"github.com/coffeebuddy/coffeebuddy/shared/runmsg"
	"github.com/coffeebuddy/coffeebuddy/shared/slackapi"
	"github.com/coffeebuddy/coffeebuddy/shared/slackonce"
	"github.com/coffeebuddy/coffeebuddy/shared/store"
	"github.com/jackc/pgx/v5"
)

const consumer = "cancel-notify"

// Handler tells a channel that its run was cancelled.
type Handler struct {
	store *store.Store
	slack *slackapi.Clients
	once  *slackonce.Poster
}

// New returns the handler.
func New(s *store.Store, c *slackapi.Clients) *Handler {
	return &Handler{store: s, slack: c, once: &slackonce.Poster{DB: s.DB, Slack: c}}
}

// Handle updates the run message in place and replies in its thread,
// tagging every orderer. The reply is keyed "cancel:<run id>" (a run is
// cancelled once), so neither a redelivery nor a retry after a crash
// between Slack accepting it and our commit posts it twice; a Slack failure
// is retried by the broker. A run cancelled before it was announced has no
// message and no thread: nothing is posted (run-announce will show it as
// cancelled).
func (h *Handler) Handle(ctx context.Context, e event.Event) (*event.Event, error) {
	var fact events.RunCancelled
	if err := e.DataAs(&fact); err != nil {
		return nil, function.Permanentf("decode run.cancelled: %w", err)
	}
	if fact.CancelledBy == "" {
		return nil, function.Permanentf("run.cancelled for %s names no canceller", fact.RunID)
	}
	run, done, err := runmsg.Begin(ctx, h.store.DB, h.slack, consumer, e.ID(), fact.RunID)
	if err != nil || done {
		return nil, err
	}
	id := run.ID
	log := function.Logger(ctx).With("run_id", id)
	if run.Status != coffee.StatusCancelled {
		return nil, function.Permanentf("run %s is %s, not cancelled", id, run.Status)
	}
	var ts string
	var orderers []string
	announced := run.SlackMessageTS != ""
	if announced {
		orders, err := store.RunOrders(ctx, h.store.DB, id)
		if err != nil {
			return nil, err
		}
		for _, o := range orders {
			orderers = append(orderers, o.UserID)
		}
		ts, _, err = h.once.Post(ctx, "cancel:"+id.String(), run.ChannelID, run.SlackMessageTS,
			blocks.CancelNotice(fact.CancelledBy, fact.Reason, orderers))
		if err := slackapi.Courtesy(ctx, log, "post the cancellation in the thread", err); err != nil {
			return nil, err
		}
	}
	dup, err := h.store.Once(ctx, consumer, e.ID(), func(pgx.Tx) error { return nil })
	switch {
	case err != nil:
		return nil, err
	case dup:
		log.Info("duplicate delivery ignored")
	case !announced:
		log.Info("run cancelled before it was announced: no thread to tell")
	default:
		log.Info("cancellation posted", "ts", ts, "orderers", len(orderers))
	}
	return nil, nil
}
