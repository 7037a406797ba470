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
	"github.com/jackc/pgx/v5"
)

const (
	consumer = "order-place"
	source   = "/coffeebuddy/order-place"
	// runPending is how long an order for a channel without an active run
	// is retried: /coffee opens the modal at once, while the run itself is
	// created by run-start from another Trigger and may land after the
	// submission. The Trigger's retries (trigger-order-place.yaml) span it.
	runPending = 30 * time.Second
)

// Publisher publishes committed outbox rows.
type Publisher interface {
	Publish(ctx context.Context, ids ...int64) error
}

// Handler places submitted orders.
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

// errClosed rolls back the order transaction: the channel's run takes no
// orders.
var errClosed = errors.New("no run taking orders")

// Handle stores the order in the channel's active run (replacing the user's
// earlier order in it), with its audit row and order.placed outbox event in
// one transaction, then publishes the event. An order for a closed run is
// answered with an ephemeral and acknowledged.
func (h *Handler) Handle(ctx context.Context, e event.Event) (*event.Event, error) {
	var sub events.OrderSubmitted
	if err := e.DataAs(&sub); err != nil {
		return nil, function.Permanentf("decode order: %w", err)
	}
	if sub.TeamID == "" || sub.ChannelID == "" || sub.UserID == "" {
		return nil, function.Permanentf("order lacks team, channel or user")
	}
	// The ingress validated it already; an invalid order here was not sent
	// by it, and no retry makes it valid.
	if err := coffee.ValidateOrder(sub.Drink, sub.Size, sub.Customizations); err != nil {
		return nil, function.Permanent(err)
	}
	log := function.Logger(ctx).With("channel", sub.ChannelID, "user", sub.UserID)
	now := h.now().UTC()
	var (
		placed   coffee.Order
		edited   bool
		outboxID int64
	)
	dup, err := h.store.Once(ctx, consumer, e.ID(), func(tx pgx.Tx) error {
		if err := store.UpsertUser(ctx, tx, sub.TeamID, sub.UserID, sub.UserName); err != nil {
			return err
		}
		var err error
		placed, edited, err = store.PlaceOrder(ctx, tx, sub.TeamID, sub.ChannelID, coffee.Order{
			UserID: sub.UserID, Drink: sub.Drink, Size: sub.Size, Customizations: coffee.NormalizeCustomizations(sub.Customizations),
		}, now)
		if errors.Is(err, coffee.ErrRunClosed) {
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
			EventType: kind, ActorUserID: sub.UserID, TeamID: sub.TeamID, ChannelID: sub.ChannelID,
			RunID: placed.RunID, CEID: e.ID(),
			Details: map[string]any{"order_id": placed.ID, "drink": placed.Drink, "size": placed.Size, "customizations": placed.Customizations},
		}); err != nil {
			return err
		}
		runID := placed.RunID.String()
		outboxID, err = outbox.Enqueue(ctx, tx, outbox.Message{
			Type: events.TypeOrderPlaced, Source: source, Subject: runID, Key: runID,
			Data: events.OrderPlaced{
				RunID: runID, UserID: placed.UserID, Drink: placed.Drink, Size: placed.Size,
				Customizations: placed.Customizations, Edited: edited, ResponseURL: sub.ResponseURL,
			},
		})
		return err
	})
	switch {
	case errors.Is(err, errClosed):
		return nil, h.refuse(ctx, e, sub, now)
	case err != nil:
		return nil, fmt.Errorf("place order: %w", err)
	case dup:
		log.Info("duplicate delivery ignored")
		return nil, nil
	}
	log = log.With("run_id", placed.RunID)
	log.Info("order placed", "order_id", placed.ID, "edited", edited)
	// Committed: a failed publish is left to the outbox sweep.
	if err := h.outbox.Publish(ctx, outboxID); err != nil {
		log.Warn("outbox publish deferred to the sweep", "err", err)
	}
	return nil, nil
}

// refuse handles an order the channel's run did not take. If the channel
// has no run at all and the event is young, the /coffee that creates it may
// still be on its way (run-start is another Trigger): retry. Otherwise the
// run has closed (the ingress, which looks at the same latest run, lets such
// an order through only in a race) and the user is told, once.
func (h *Handler) refuse(ctx context.Context, e event.Event, sub events.OrderSubmitted, now time.Time) error {
	log := function.Logger(ctx).With("channel", sub.ChannelID, "user", sub.UserID)
	run, err := store.LatestRun(ctx, h.store.DB, sub.TeamID, sub.ChannelID)
	switch {
	case errors.Is(err, coffee.ErrRunNotFound):
		if age := now.Sub(submittedAt(e, sub)); age < runPending {
			return fmt.Errorf("channel %s has no run %v after the order: waiting for the /coffee that starts it", sub.ChannelID, age.Round(time.Millisecond))
		}
	case err != nil:
		return err
	case run.Status == coffee.StatusActive && now.Before(run.LastCallAt):
		// A run opened since PlaceOrder looked: try again.
		return fmt.Errorf("channel %s has an open run now (%s): retrying", sub.ChannelID, run.ID)
	}
	dup, err := h.store.Once(ctx, consumer, e.ID(), func(pgx.Tx) error {
		// Posted inside the dedup transaction: a rate-limited post rolls
		// it back and the retry posts; a redelivery after commit posts
		// nothing; a permanent refusal is logged (slackapi.Inform).
		return h.slack.Inform(ctx, log, "tell the orderer the run closed",
			slackapi.Answer{ResponseURL: sub.ResponseURL, Channel: sub.ChannelID, User: sub.UserID},
			slackapi.Reply{Text: blocks.RunClosedNotice})
	})
	if err != nil {
		return fmt.Errorf("tell the user the run closed: %w", err)
	}
	log.Info("order refused: the run is closed", "duplicate", dup)
	return nil
}

// submittedAt is when the ingress accepted the order; zero (so old) when
// the event says nothing.
func submittedAt(e event.Event, sub events.OrderSubmitted) time.Time {
	if t := e.Time(); !t.IsZero() {
		return t
	}
	return sub.At
}
