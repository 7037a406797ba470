package main

import (
	"context"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/coffeebuddy/coffeebuddy/shared/events"
	"github.com/coffeebuddy/coffeebuddy/shared/function"
	"github.com/coffeebuddy/coffeebuddy/shared/runmsg"
	"github.com/coffeebuddy/coffeebuddy/shared/slackapi"
	"github.com/coffeebuddy/coffeebuddy/shared/store"
	"github.com/jackc/pgx/v5"
)

const consumer = "volunteer-notify"

// Handler shows the channel who volunteered.
type Handler struct {
	store *store.Store
	slack *slackapi.Clients
}

// New returns the handler.
func New(s *store.Store, sl *slackapi.Clients) *Handler {
	return &Handler{store: s, slack: sl}
}

// Handle updates the run message in place: it now shows the volunteer, to
// everyone in the channel. The thread hears of the volunteer once, when the
// run closes and they become its runner (runner-notify), and the volunteer
// was answered where they clicked (run-volunteer). The update is
// idempotent (rendered from the database), so a failure is retried whole.
func (h *Handler) Handle(ctx context.Context, e event.Event) (*event.Event, error) {
	var fact events.RunFact
	if err := e.DataAs(&fact); err != nil {
		return nil, function.Permanentf("decode volunteer_set: %w", err)
	}
	run, done, err := runmsg.Begin(ctx, h.store.DB, h.slack, consumer, e.ID(), fact.RunID)
	if err != nil || done {
		return nil, err
	}
	if _, err := h.store.Once(ctx, consumer, e.ID(), func(pgx.Tx) error { return nil }); err != nil {
		return nil, err
	}
	function.Logger(ctx).Info("volunteer shown", "run_id", run.ID, "volunteer", run.VolunteerUserID, "announced", run.SlackMessageTS != "")
	return nil, nil
}
