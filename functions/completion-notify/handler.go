package main

import (
	"context"
	"fmt"
	"log/slog"

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

const consumer = "completion-notify"

// Handler tells the channel the coffee is here.
type Handler struct {
	store *store.Store
	slack *slackapi.Clients
	once  *slackonce.Poster
}

// New returns the handler.
func New(s *store.Store, sl *slackapi.Clients) *Handler {
	return &Handler{store: s, slack: sl, once: &slackonce.Poster{DB: s.DB, Slack: sl}}
}

// Handle updates the run message in place (delivered), posts the
// completion reply in the run's thread, tagging every orderer once and
// thanking the runner, and updates the runner's DMs in place: no live
// Mark complete button, and when the run was completed. The reply is keyed "completion:<run id>" (a run
// completes once), so neither a redelivery nor a retry after a crash
// between Slack accepting it and our commit posts it twice. A failure is
// retried whole; the message update is idempotent (rendered from the
// database).
func (h *Handler) Handle(ctx context.Context, e event.Event) (*event.Event, error) {
	var fact events.RunFact
	if err := e.DataAs(&fact); err != nil {
		return nil, function.Permanentf("decode run.completed: %w", err)
	}
	run, done, err := runmsg.Begin(ctx, h.store.DB, h.slack, consumer, e.ID(), fact.RunID)
	if err != nil || done {
		return nil, err
	}
	id := run.ID
	log := function.Logger(ctx).With("run_id", id)
	if run.SlackMessageTS == "" {
		return nil, fmt.Errorf("run %s: announcement still pending", id)
	}
	if run.Status != coffee.StatusCompleted {
		// Completion is final and committed before the fact is published.
		return nil, function.Permanentf("run %s is %s: run.completed out of step with the database", id, run.Status)
	}
	orders, err := store.RunOrders(ctx, h.store.DB, id)
	if err != nil {
		return nil, err
	}
	_, _, err = h.once.Post(ctx, "completion:"+id.String(), run.ChannelID, run.SlackMessageTS, blocks.CompletionReply(run, orders))
	if err := slackapi.Courtesy(ctx, log, "post the completion in the thread", err); err != nil {
		return nil, err
	}
	if err := h.closeDMs(ctx, log, run, orders); err != nil {
		return nil, err
	}
	if _, err := h.store.Once(ctx, consumer, e.ID(), func(pgx.Tx) error { return nil }); err != nil {
		return nil, err
	}
	log.Info("completion announced", "runner", run.RunnerUserID, "orders", len(orders))
	return nil, nil
}

// closeDMs re-renders the runner's assignment and reminder DMs as done
// (chat.update is idempotent, so a retry repeats it harmlessly).
func (h *Handler) closeDMs(ctx context.Context, log *slog.Logger, run coffee.Run, orders []coffee.Order) error {
	keys := []string{slackonce.RunnerDMKey(run.ID)}
	for n := 1; n <= run.ReminderCount; n++ {
		keys = append(keys, slackonce.RunnerReminderKey(run.ID, n))
	}
	posts, err := h.once.Posted(ctx, keys...)
	if err != nil {
		return err
	}
	if len(posts) == 0 {
		return nil
	}
	cli, err := h.slack.Get()
	if err != nil {
		return err
	}
	done := blocks.RunnerDMDone(run, orders)
	for _, p := range posts {
		_, _, _, err := cli.UpdateMessageContext(ctx, p.Channel, p.TS, done.Options()...)
		if err := slackapi.Courtesy(ctx, log, "mark the runner's DM done", err); err != nil {
			return fmt.Errorf("chat.update %s: %w", p.Key, err)
		}
	}
	return nil
}
