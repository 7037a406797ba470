package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/coffeebuddy/coffeebuddy/shared/blocks"
	"github.com/coffeebuddy/coffeebuddy/shared/coffee"
	"github.com/coffeebuddy/coffeebuddy/shared/events"
	"github.com/coffeebuddy/coffeebuddy/shared/function"
	"github.com/coffeebuddy/coffeebuddy/shared/runmsg"
	"github.com/coffeebuddy/coffeebuddy/shared/slackapi"
	"github.com/coffeebuddy/coffeebuddy/shared/store"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

const consumer = "order-confirm"

// Handler shows placed orders: in the run message and to the orderer.
type Handler struct {
	store *store.Store
	slack *slackapi.Clients
}

// New returns the handler.
func New(s *store.Store, c *slackapi.Clients) *Handler { return &Handler{store: s, slack: c} }

// Handle updates the run message in place (live order list and totals,
// rendered from the database) and confirms the order to the orderer with an
// ephemeral in the run's channel, once per event.
func (h *Handler) Handle(ctx context.Context, e event.Event) (*event.Event, error) {
	var p events.OrderPlaced
	if err := e.DataAs(&p); err != nil {
		return nil, function.Permanentf("decode order.placed: %w", err)
	}
	id, err := uuid.Parse(p.RunID)
	if err != nil {
		return nil, function.Permanentf("run id %q: %w", p.RunID, err)
	}
	if p.UserID == "" {
		return nil, function.Permanentf("order.placed lacks the user")
	}
	log := function.Logger(ctx).With("run_id", id, "user", p.UserID)
	// A redelivery after the confirmation went out has nothing left to do;
	// skipping it spares a chat.update.
	done, err := store.Processed(ctx, h.store.DB, consumer, e.ID())
	if err != nil {
		return nil, err
	}
	if done {
		log.Info("duplicate delivery ignored")
		return nil, nil
	}
	run, err := runmsg.Refresh(ctx, h.store.DB, h.slack, id)
	if errors.Is(err, coffee.ErrRunNotFound) {
		return nil, function.Permanent(err)
	}
	if err != nil {
		return nil, fmt.Errorf("refresh run message: %w", err)
	}
	if run.SlackMessageTS == "" {
		// run-announce has not posted the run message yet; it will show
		// this order when it does. Confirm once it is there, so the order
		// the user is told about is visible in the channel.
		return nil, fmt.Errorf("run %s: run message not posted yet", id)
	}
	kind := blocks.Kind(p.Edited, p.Usual)
	o := coffee.Order{RunID: id, UserID: p.UserID, Drink: p.Drink, Size: p.Size, Customizations: p.Customizations}
	dup, err := h.store.Once(ctx, consumer, e.ID(), func(pgx.Tx) error {
		// Posted inside the dedup transaction: concurrent redeliveries wait
		// on the processed_events row, a rate-limited post rolls it back
		// and is retried, a redelivery after commit posts nothing, and a
		// permanent refusal is logged (slackapi.Inform). It goes where the
		// orderer opened the form (its response_url), else to the channel.
		return h.slack.Inform(ctx, log, "confirm the order",
			slackapi.Answer{ResponseURL: p.ResponseURL, Channel: run.ChannelID, User: p.UserID},
			slackapi.Reply{Text: blocks.OrderConfirmationText(kind, o), Blocks: blocks.OrderConfirmation(kind, o)})
	})
	if err != nil {
		return nil, fmt.Errorf("confirm order: %w", err)
	}
	log.Info("order confirmed", "edited", p.Edited, "usual", p.Usual, "duplicate", dup)
	return nil, nil
}
