package main

import (
	"context"
	"errors"
	"fmt"

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
}

// New returns the handler.
func New(s *store.Store, sl *slackapi.Clients) *Handler {
	return &Handler{store: s, slack: sl, once: &slackonce.Poster{DB: s.DB, Slack: sl}}
}

// Handle posts the run message once (keyed "run-message:<run id>", so a
// retry after a crash between Slack accepting it and our commit finds it
// instead of posting again) and records its ts so later changes update it
// in place.
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
	ts, posted, err := h.once.Post(ctx, "run-message:"+run.ID.String(), run.ChannelID, "",
		blocks.Message{Text: blocks.RunMessageText(run, len(orders)), Blocks: blocks.RunMessage(run, orders)})
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
