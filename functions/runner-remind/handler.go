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
	"github.com/coffeebuddy/coffeebuddy/shared/slackapi"
	"github.com/coffeebuddy/coffeebuddy/shared/slackonce"
	"github.com/coffeebuddy/coffeebuddy/shared/store"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

const consumer = "runner-remind"

// Handler reminds runners.
type Handler struct {
	store *store.Store
	once  *slackonce.Poster
	now   func() time.Time
}

// New returns the handler; now stamps reminder_sent_at.
func New(s *store.Store, sl *slackapi.Clients, now func() time.Time) *Handler {
	return &Handler{store: s, once: &slackonce.Poster{DB: s.DB, Slack: sl}, now: now}
}

// Handle DMs the runner the order summary again with the *Mark complete*
// button, if the run is still closed (not completed or cancelled by now).
// The DM is keyed "runner-remind:<run id>:<reminder count>": run-tick
// counts a reminder when it claims it, so each reminder is one DM, even
// when a crash came between Slack accepting it and our commit. After the
// DM, reminder_sent_at (which run-tick's next reminder counts from) and the
// runner_reminded audit row are written once per reminder (record), also
// when the DM was found already sent; then the event is marked processed.
// A redelivery of a handled event sends nothing.
func (h *Handler) Handle(ctx context.Context, e event.Event) (*event.Event, error) {
	var fact events.RunFact
	if err := e.DataAs(&fact); err != nil {
		return nil, function.Permanentf("decode reminder_due: %w", err)
	}
	id, err := uuid.Parse(fact.RunID)
	if err != nil {
		return nil, function.Permanentf("run id %q: %w", fact.RunID, err)
	}
	log := function.Logger(ctx).With("run_id", id)
	if done, err := store.Processed(ctx, h.store.DB, consumer, e.ID()); err != nil || done {
		if done {
			log.Info("duplicate delivery ignored")
		}
		return nil, err
	}
	run, err := store.GetRun(ctx, h.store.DB, id)
	if errors.Is(err, coffee.ErrRunNotFound) {
		return nil, function.Permanent(err)
	}
	if err != nil {
		return nil, err
	}
	var dmChannel string
	if run.Status == coffee.StatusClosed && run.RunnerUserID != "" {
		orders, err := store.RunOrders(ctx, h.store.DB, id)
		if err != nil {
			return nil, err
		}
		key := slackonce.RunnerReminderKey(id, run.ReminderCount)
		if dmChannel, _, _, err = h.once.DM(ctx, key, run.RunnerUserID, blocks.RunnerReminder(run, orders)); err != nil {
			// A runner Slack will not DM (deactivated, gone) is not reminded.
			dmChannel = ""
			if err := slackapi.Courtesy(ctx, log, "remind the runner", err); err != nil {
				return nil, err
			}
		}
	}
	if dmChannel != "" {
		if err := h.record(ctx, run, dmChannel, e.ID()); err != nil {
			return nil, err
		}
	}
	if _, err := h.store.Once(ctx, consumer, e.ID(), func(pgx.Tx) error { return nil }); err != nil {
		return nil, err
	}
	if dmChannel == "" {
		log.Info("no reminder: run is done", "status", run.Status)
	} else {
		log.Info("runner reminded", "runner", run.RunnerUserID, "reminder", run.ReminderCount)
	}
	return nil, nil
}

// record writes reminder_sent_at and the runner_reminded audit row for the
// reminder DMed in dmChannel, unless that reminder is recorded already. It
// is not part of the Once that marks the event processed: a concurrent copy
// of the event that found the run completed marks it processed without a
// DM, and the copy whose DM Slack took must still record it.
func (h *Handler) record(ctx context.Context, run coffee.Run, dmChannel, ceID string) error {
	err := pgx.BeginFunc(ctx, h.store.DB, func(tx pgx.Tx) error {
		first, err := store.RecordRunnerReminder(ctx, tx, run.ID, run.ReminderCount, h.now())
		if err != nil || !first {
			return err
		}
		return audit.Record(ctx, tx, audit.Entry{
			EventType: audit.RunnerReminded, TeamID: run.TeamID, ChannelID: run.ChannelID, RunID: run.ID, CEID: ceID,
			Details: map[string]any{"runner": run.RunnerUserID, "dm_channel": dmChannel, "reminder": run.ReminderCount},
		})
	})
	if err != nil {
		return fmt.Errorf("record reminder %d for run %s: %w", run.ReminderCount, run.ID, err)
	}
	return nil
}
