package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
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

const consumer = "warn-notify"

// Handler posts last-call warnings.
type Handler struct {
	store *store.Store
	once  *slackonce.Poster
	now   func() time.Time
}

// New returns the handler; now is the clock (time.Now in production).
func New(s *store.Store, c *slackapi.Clients, now func() time.Time) *Handler {
	return &Handler{store: s, once: &slackonce.Poster{DB: s.DB, Slack: c}, now: now}
}

// Handle posts the warning in the run's thread, keyed "warning:<run id>"
// (run-tick warns a run once): neither a redelivery nor a retry after a
// crash between Slack accepting it and our commit posts it twice, and a
// failed post is retried by the broker. A warning that is stale by delivery
// time (the run already closed, or its last call passed) is acknowledged
// without a post.
func (h *Handler) Handle(ctx context.Context, e event.Event) (*event.Event, error) {
	var fact events.RunFact
	if err := e.DataAs(&fact); err != nil {
		return nil, function.Permanentf("decode last_call_soon: %w", err)
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
	if run.Status != coffee.StatusActive || !h.now().Before(run.LastCallAt) {
		log.Info("warning is stale, not posted", "status", run.Status, "last_call_at", run.LastCallAt)
		return nil, nil
	}
	if run.SlackMessageTS == "" {
		// run-announce has not posted the run message yet: no thread to
		// reply in. Retrying waits for it.
		return nil, fmt.Errorf("run %s is not announced yet", id)
	}
	ts, _, err := h.once.Post(ctx, "warning:"+id.String(), run.ChannelID, run.SlackMessageTS, blocks.LastCallWarning(run))
	if err := slackapi.Courtesy(ctx, log, "post the last call warning in the thread", err); err != nil {
		return nil, err
	}
	dup, err := h.store.Once(ctx, consumer, e.ID(), func(pgx.Tx) error { return nil })
	if err != nil {
		return nil, err
	}
	if dup {
		log.Info("duplicate delivery ignored")
		return nil, nil
	}
	log.Info("last call warning posted", "ts", ts, "last_call_at", run.LastCallAt)
	return nil, nil
}
