package main

import (
	"context"
	"fmt"
	"time"

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
	"github.com/coffeebuddy/coffeebuddy/shared/timers"
	"github.com/jackc/pgx/v5"
)

const consumer = "runner-notify"

const source = "/coffeebuddy/runner-notify"

// Publisher publishes committed outbox rows.
type Publisher interface {
	Publish(ctx context.Context, ids ...int64) error
}

// Handler tells the channel and the runner about an assignment.
type Handler struct {
	store  *store.Store
	slack  *slackapi.Clients
	once   *slackonce.Poster
	outbox Publisher
	now    func() time.Time
}

// New returns the handler; now stamps reminder_sent_at.
func New(s *store.Store, sl *slackapi.Clients, p Publisher, now func() time.Time) *Handler {
	return &Handler{store: s, slack: sl, once: &slackonce.Poster{DB: s.DB, Slack: sl}, outbox: p, now: now}
}

// Handle runs three steps, each safe to repeat, so a retry after any
// failure (a crash between Slack accepting a post and our commit included)
// finishes the job without doubling a message:
//
//  1. the run message is re-rendered in place (idempotent);
//  2. the thread reply (who goes and why, or that nobody ordered) is
//     posted once per run (slackonce key "assignment:<run id>");
//  3. the runner is DMed once per run (key "runner-dm:<run id>") unless
//     reminder_sent_at says a DM went out; then reminder_sent_at, the
//     runner_dmed audit row and the reminder's timer (run-timer reminds
//     on time) are written once per run (recordDM), also when the DM was
//     found already sent; then the event is marked processed.
func (h *Handler) Handle(ctx context.Context, e event.Event) (*event.Event, error) {
	var rc events.RunClosed
	if err := e.DataAs(&rc); err != nil {
		return nil, function.Permanentf("decode run.closed: %w", err)
	}
	run, done, err := runmsg.Begin(ctx, h.store.DB, h.slack, consumer, e.ID(), rc.RunID)
	if err != nil || done {
		return nil, err
	}
	id := run.ID
	log := function.Logger(ctx).With("run_id", id)
	if run.SlackMessageTS == "" {
		return nil, fmt.Errorf("run %s: announcement still pending", id)
	}
	if run.Status == coffee.StatusActive {
		return nil, function.Permanentf("run %s is still active: run.closed out of step with the database", id)
	}
	if err := slackapi.Courtesy(ctx, log, "post the assignment in the thread", h.threadReply(ctx, run, rc.ClosedBy)); err != nil {
		return nil, err
	}
	var dmChannel string
	if run.RunnerUserID != "" && run.Status == coffee.StatusClosed && run.ReminderSentAt.IsZero() {
		orders, err := store.RunOrders(ctx, h.store.DB, id)
		if err != nil {
			return nil, err
		}
		if dmChannel, _, _, err = h.once.DM(ctx, slackonce.RunnerDMKey(id), run.RunnerUserID, blocks.RunnerDM(run, orders)); err != nil {
			// A runner Slack will not DM (deactivated, gone) is told
			// nothing more; the thread has named them.
			dmChannel = ""
			if err := slackapi.Courtesy(ctx, log, "DM the runner", err); err != nil {
				return nil, err
			}
		}
	}
	var timerIDs []int64
	if dmChannel != "" {
		if timerIDs, err = h.recordDM(ctx, run, dmChannel, e.ID()); err != nil {
			return nil, err
		}
	}
	if _, err := h.store.Once(ctx, consumer, e.ID(), func(pgx.Tx) error { return nil }); err != nil {
		return nil, err
	}
	if err := h.outbox.Publish(ctx, timerIDs...); err != nil {
		log.Warn("outbox publish deferred to the sweep", "err", err)
	}
	switch {
	case dmChannel != "":
		log.Info("runner notified", "runner", run.RunnerUserID)
	case run.RunnerUserID == "":
		log.Info("run closed without a runner: no DM")
	default:
		log.Info("runner not DMed", "status", run.Status, "reminder_sent_at", run.ReminderSentAt)
	}
	return nil, nil
}

// recordDM writes reminder_sent_at, the runner_dmed audit row and the
// reminder's timer for the DM in dmChannel, unless a DM is recorded already.
// It is not part of the Once that marks the event processed: a concurrent
// copy of the event that found the run completed marks it processed without
// a DM, and the copy whose DM Slack took must still record it.
func (h *Handler) recordDM(ctx context.Context, run coffee.Run, dmChannel, ceID string) (timerIDs []int64, err error) {
	err = pgx.BeginFunc(ctx, h.store.DB, func(tx pgx.Tx) error {
		first, err := store.RecordFirstRunnerDM(ctx, tx, run.ID, h.now())
		if err != nil || !first {
			return err
		}
		if err := audit.Record(ctx, tx, audit.Entry{
			EventType: audit.RunnerDMed, TeamID: run.TeamID, ChannelID: run.ChannelID, RunID: run.ID, CEID: ceID,
			Details: map[string]any{"runner": run.RunnerUserID, "dm_channel": dmChannel},
		}); err != nil {
			return err
		}
		timerIDs, err = timers.Schedule(ctx, tx, source, run.ID, timers.Remind)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("record the runner DM for run %s: %w", run.ID, err)
	}
	return timerIDs, nil
}

// threadReply posts who goes and why, once per run (a run closes once). A
// cancelled run gets none: cancel-notify has told the thread.
func (h *Handler) threadReply(ctx context.Context, run coffee.Run, closedBy string) error {
	if run.Status == coffee.StatusCancelled {
		return nil
	}
	_, _, err := h.once.Post(ctx, "assignment:"+run.ID.String(), run.ChannelID, run.SlackMessageTS,
		blocks.AssignmentReply(run, closedBy))
	return err
}
