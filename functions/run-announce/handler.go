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
	"github.com/coffeebuddy/coffeebuddy/shared/slackapi"
	"github.com/coffeebuddy/coffeebuddy/shared/store"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/slack-go/slack"
)

const consumer = "run-announce"

// Poster posts a channel message and returns its ts.
type Poster interface {
	Post(ctx context.Context, channel, text string, bl []slack.Block) (ts string, err error)
}

// Handler announces runs.
type Handler struct {
	store *store.Store
	slack Poster
}

// New returns the handler.
func New(s *store.Store, p Poster) *Handler { return &Handler{store: s, slack: p} }

// Handle posts the run message once and records its ts so later changes
// update it in place.
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
	ts, err := h.slack.Post(ctx, run.ChannelID, blocks.RunMessageText(run, len(orders)), blocks.RunMessage(run, orders))
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
	log.Info("run announced", "ts", ts, "duplicate", dup)
	return nil, nil
}

// slackPoster posts through slack-go.
type slackPoster struct{ clients *slackapi.Clients }

func (p slackPoster) Post(ctx context.Context, channel, text string, bl []slack.Block) (string, error) {
	cli, err := p.clients.Get()
	if err != nil {
		return "", err
	}
	_, ts, err := cli.PostMessageContext(ctx, channel, slack.MsgOptionText(text, false), slack.MsgOptionBlocks(bl...))
	if err != nil {
		return "", fmt.Errorf("chat.postMessage: %w", err)
	}
	return ts, nil
}
