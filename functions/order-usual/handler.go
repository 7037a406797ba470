package main

import (
	"context"
	"errors"
	"fmt"
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
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

const (
	consumer = "order-usual"
	source   = "/coffeebuddy/order-usual"
)

// Publisher publishes committed outbox rows.
type Publisher interface {
	Publish(ctx context.Context, ids ...int64) error
}

// Handler places a user's usual order.
type Handler struct {
	store  *store.Store
	outbox Publisher
	slack  *slackapi.Clients
	now    func() time.Time
}

// New returns the handler.
func New(s *store.Store, p Publisher, c *slackapi.Clients, now func() time.Time) *Handler {
	return &Handler{store: s, outbox: p, slack: c, now: now}
}

// Refusals: each rolls the order transaction back and is told to the user.
var (
	errClosed  = errors.New("the clicked run takes no orders")
	errNoUsual = errors.New("no usual yet")
)

// Handle places the clicker's favourite drink+size, with the customizations
// they last had on it, in the clicked run: same transaction, audit row and
// order.placed fact (Usual) as a modal order.
func (h *Handler) Handle(ctx context.Context, e event.Event) (*event.Event, error) {
	var act events.RunAction
	if err := e.DataAs(&act); err != nil {
		return nil, function.Permanentf("decode click: %w", err)
	}
	id, err := uuid.Parse(act.RunID)
	if err != nil {
		return nil, function.Permanentf("run id %q: %w", act.RunID, err)
	}
	if act.UserID == "" {
		return nil, function.Permanentf("click lacks a user")
	}
	log := function.Logger(ctx).With("run_id", id, "user", act.UserID)
	run, err := store.GetRun(ctx, h.store.DB, id)
	if errors.Is(err, coffee.ErrRunNotFound) {
		return nil, function.Permanent(err)
	}
	if err != nil {
		return nil, err
	}
	now := h.now().UTC()
	var (
		placed   coffee.Order
		edited   bool
		outboxID int64
	)
	dup, err := h.store.Once(ctx, consumer, e.ID(), func(tx pgx.Tx) error {
		if run.Status != coffee.StatusActive || !now.Before(run.LastCallAt) {
			return errClosed
		}
		drink, size, ok, err := store.Favourite(ctx, tx, act.UserID)
		if err != nil {
			return err
		}
		if !ok {
			return errNoUsual
		}
		custom, err := store.UsualCustomizations(ctx, tx, act.UserID, drink, size)
		if err != nil {
			return err
		}
		if err := store.UpsertUser(ctx, tx, run.TeamID, act.UserID, act.UserName); err != nil {
			return err
		}
		// PlaceOrder orders into the channel's active run under its row
		// lock; if that is not the clicked run, the clicked one has closed
		// and returning rolls the order back.
		placed, edited, err = store.PlaceOrder(ctx, tx, run.TeamID, run.ChannelID, coffee.Order{
			UserID: act.UserID, Drink: drink, Size: size, Customizations: custom,
		}, now)
		if errors.Is(err, coffee.ErrRunClosed) || (err == nil && placed.RunID != run.ID) {
			return errClosed
		}
		if err != nil {
			return err
		}
		kind := audit.OrderPlaced
		if edited {
			kind = audit.OrderUpdated
		}
		if err := audit.Record(ctx, tx, audit.Entry{
			EventType: kind, ActorUserID: act.UserID, TeamID: run.TeamID, ChannelID: run.ChannelID,
			RunID: run.ID, CEID: e.ID(),
			Details: map[string]any{"order_id": placed.ID, "drink": placed.Drink, "size": placed.Size,
				"customizations": placed.Customizations, "usual": true},
		}); err != nil {
			return err
		}
		outboxID, err = outbox.Enqueue(ctx, tx, outbox.Message{
			Type: events.TypeOrderPlaced, Source: source, Subject: run.ID.String(), Key: run.ID.String(),
			Data: events.OrderPlaced{
				RunID: run.ID.String(), UserID: placed.UserID, Drink: placed.Drink, Size: placed.Size,
				Customizations: placed.Customizations, Edited: edited, Usual: true, ResponseURL: act.ResponseURL,
			},
		})
		return err
	})
	switch {
	case errors.Is(err, errClosed):
		return nil, h.tell(ctx, e, run, act, blocks.RunClosedNotice, "usual refused: the run is closed")
	case errors.Is(err, errNoUsual):
		return nil, h.tell(ctx, e, run, act, blocks.NoUsualNotice, "usual refused: no order history")
	case err != nil:
		return nil, fmt.Errorf("place usual: %w", err)
	case dup:
		log.Info("duplicate delivery ignored")
		return nil, nil
	}
	log.Info("usual placed", "order_id", placed.ID, "drink", placed.Drink, "size", placed.Size, "edited", edited)
	if err := h.outbox.Publish(ctx, outboxID); err != nil {
		log.Warn("outbox publish deferred to the sweep", "err", err)
	}
	return nil, nil
}

// tell shows the clicker why nothing was ordered, where they clicked, once
// per event: the post happens inside the dedup transaction, so a
// rate-limited post is retried and a redelivery after success posts
// nothing; a permanent refusal is logged (slackapi.Inform).
func (h *Handler) tell(ctx context.Context, e event.Event, run coffee.Run, act events.RunAction, text, what string) error {
	log := function.Logger(ctx).With("run_id", run.ID, "user", act.UserID)
	dup, err := h.store.Once(ctx, consumer, e.ID(), func(pgx.Tx) error {
		return h.slack.Inform(ctx, log, "tell the clicker",
			slackapi.Answer{ResponseURL: act.ResponseURL, Channel: run.ChannelID, User: act.UserID}, slackapi.Reply{Text: text})
	})
	if err != nil {
		return err
	}
	log.Info(what, "duplicate", dup)
	return nil
}
