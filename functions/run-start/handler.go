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
	"github.com/coffeebuddy/coffeebuddy/shared/timers"
	"github.com/jackc/pgx/v5"
)

const (
	consumer = "run-start"
	source   = "/coffeebuddy/run-start"
)

// Publisher publishes committed outbox rows.
type Publisher interface {
	Publish(ctx context.Context, ids ...int64) error
}

// Handler starts coffee runs.
type Handler struct {
	store    *store.Store
	outbox   Publisher
	slack    *slackapi.Clients
	lastCall time.Duration
	now      func() time.Time
}

// New returns the handler; lastCall is COFFEE_LAST_CALL.
func New(s *store.Store, p Publisher, sl *slackapi.Clients, lastCall time.Duration, now func() time.Time) *Handler {
	return &Handler{store: s, outbox: p, slack: sl, lastCall: lastCall, now: now}
}

// Handle creates the run, its audit row and its run.created outbox event in
// one transaction, then publishes the event. When the channel already has
// an active run (or another /coffee created one a moment earlier) the
// caller is told which run their order form belongs to and when its last
// call is, through the command's response_url, in that same transaction:
// a rate-limited answer retries the event, a refused one is logged.
func (h *Handler) Handle(ctx context.Context, e event.Event) (*event.Event, error) {
	var cmd events.SlashCommand
	if err := e.DataAs(&cmd); err != nil {
		return nil, function.Permanentf("decode command: %w", err)
	}
	if cmd.TeamID == "" || cmd.ChannelID == "" || cmd.UserID == "" {
		return nil, function.Permanentf("command lacks team, channel or user")
	}
	lastCall, err := coffee.ParseLastCall(cmd.Text, h.lastCall)
	if err != nil {
		return nil, function.Permanent(err) // ingress already told the user
	}
	log := function.Logger(ctx)
	now := h.now().UTC()
	var outboxIDs []int64
	var run coffee.Run
	dup, err := h.store.Once(ctx, consumer, e.ID(), func(tx pgx.Tx) error {
		if err := store.UpsertUser(ctx, tx, cmd.TeamID, cmd.UserID, cmd.UserName); err != nil {
			return err
		}
		run, err = store.CreateRun(ctx, tx, store.NewRun{
			TeamID: cmd.TeamID, ChannelID: cmd.ChannelID, InitiatorUserID: cmd.UserID,
			LastCallAt: now.Add(lastCall), CreatedAt: now,
		})
		if errors.Is(err, coffee.ErrRunActive) {
			// One active run per channel: the caller orders into it (the
			// ingress already opened the modal).
			return h.slack.Inform(ctx, log, "tell the caller which run they joined",
				slackapi.Answer{ResponseURL: cmd.ResponseURL, Channel: cmd.ChannelID, User: cmd.UserID},
				slackapi.Reply{Text: blocks.RunAlreadyOpenNotice(run, cmd.UserID, strings.TrimSpace(cmd.Text) != "")})
		}
		if err != nil {
			return err
		}
		if err := audit.Record(ctx, tx, audit.Entry{
			EventType: audit.RunCreated, ActorUserID: cmd.UserID, TeamID: cmd.TeamID,
			ChannelID: cmd.ChannelID, RunID: run.ID, CEID: e.ID(),
			Details: map[string]any{"last_call_at": run.LastCallAt},
		}); err != nil {
			return err
		}
		created, err := outbox.Enqueue(ctx, tx, outbox.Message{
			Type: events.TypeRunCreated, Source: source, Subject: run.ID.String(), Key: run.ID.String(),
			Data: events.RunCreated{
				RunID: run.ID.String(), TeamID: run.TeamID, ChannelID: run.ChannelID,
				InitiatorUserID: run.InitiatorUserID, LastCallAt: run.LastCallAt, CreatedAt: run.CreatedAt,
				ResponseURL: cmd.ResponseURL,
			},
		})
		if err != nil {
			return err
		}
		// Its last-call warning and last call, on time (run-timer).
		timerIDs, err := timers.Schedule(ctx, tx, source, run.ID, timers.Warn, timers.LastCall)
		outboxIDs = append([]int64{created}, timerIDs...)
		return err
	})
	switch {
	case err != nil:
		return nil, fmt.Errorf("start run: %w", err)
	case dup:
		log.Info("duplicate delivery ignored")
		return nil, nil
	case len(outboxIDs) == 0:
		log.Info("channel already has an active run", "run_id", run.ID)
		return nil, nil
	}
	log = log.With("run_id", run.ID)
	log.Info("run created", "last_call_at", run.LastCallAt)
	// Committed: a failed publish is not this event's failure. The row stays
	// unpublished and the outbox sweep sends it.
	if err := h.outbox.Publish(ctx, outboxIDs...); err != nil {
		log.Warn("outbox publish deferred to the sweep", "err", err)
	}
	return nil, nil
}
