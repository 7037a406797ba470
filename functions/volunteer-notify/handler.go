package main

import (
	"context"
	"fmt"

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

const consumer = "volunteer-notify"

// Handler tells the channel about a volunteer.
type Handler struct {
	store *store.Store
	slack *slackapi.Clients
	once  *slackonce.Poster
}

// New returns the handler.
func New(s *store.Store, sl *slackapi.Clients) *Handler {
	return &Handler{store: s, slack: sl, once: &slackonce.Poster{DB: s.DB, Slack: sl}}
}

// Handle updates the run message in place (it now shows the volunteer) and
// replies in the run's thread, once per event: the reply is keyed
// "volunteer:<CloudEvent id>" (a run's volunteer may change, and each
// change is its own fact, whose id the outbox keeps across republishes), so
// neither a redelivery nor a retry after a crash between Slack accepting it
// and our commit posts it twice. A failure before the reply is retried
// whole; the message update is idempotent (rendered from the database).
func (h *Handler) Handle(ctx context.Context, e event.Event) (*event.Event, error) {
	var fact events.RunFact
	if err := e.DataAs(&fact); err != nil {
		return nil, function.Permanentf("decode volunteer_set: %w", err)
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
	volunteer := fact.UserID
	if volunteer == "" {
		volunteer = run.VolunteerUserID
	}
	switch {
	case volunteer == "":
		log.Warn("volunteer_set without a volunteer")
	case run.Status == coffee.StatusCancelled:
		// cancel-notify has told the thread; a late "I'll go" would confuse.
		log.Info("run cancelled: no volunteer reply")
	default:
		if _, _, err := h.once.Post(ctx, "volunteer:"+e.ID(), run.ChannelID, run.SlackMessageTS,
			blocks.VolunteerReply(volunteer)); err != nil {
			return nil, err
		}
		log.Info("volunteer announced", "volunteer", volunteer)
	}
	_, err = h.store.Once(ctx, consumer, e.ID(), func(pgx.Tx) error { return nil })
	return nil, err
}
