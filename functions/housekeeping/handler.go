package main

import (
	"context"
	"fmt"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/coffeebuddy/coffeebuddy/shared/audit"
	"github.com/coffeebuddy/coffeebuddy/shared/function"
	"github.com/coffeebuddy/coffeebuddy/shared/store"
	"github.com/jackc/pgx/v5"
)

const consumer = "housekeeping"

// Retention periods of the bookkeeping tables.
const (
	// ProcessedEventsRetention keeps consumer dedup rows well past Kafka's
	// 7-day retention (source and dead-letter topics alike) plus time to
	// replay dead letters, so a redelivery or replay can never find its
	// dedup row gone and apply its effect twice.
	ProcessedEventsRetention = 30 * 24 * time.Hour
	// OutboxRetention keeps published outbox rows a week for debugging
	// ("what did we publish for this run?"). Nothing reads a published row
	// again: the relay and the sweep only look at unpublished ones, which
	// are never deleted.
	OutboxRetention = 7 * 24 * time.Hour
	// SlackPostsRetention keeps a posted message's dedup key as long as the
	// processed_events row of the event that posted it, so any retry that
	// dedup lets through still finds the post instead of making another.
	SlackPostsRetention = 30 * 24 * time.Hour
)

// DefaultBatch bounds the rows deleted from each table per tick. Steady
// state is about a day's rows (thousands), but the first tick after deploy
// meets the whole history, maybe millions: one unbounded DELETE could
// outlast the Service's 120 s request timeout, roll back and be retried the
// same way each day, never finishing. Bounded, every tick commits progress
// and the backlog drains over the next ticks (a warning says so). Batches
// within one transaction would bound nothing, so it is one per table.
const DefaultBatch = 250_000

// Handler applies the retention periods.
type Handler struct {
	store *store.Store
	now   func() time.Time
	batch int
}

// New returns the handler; batch <= 0 means DefaultBatch.
func New(s *store.Store, now func() time.Time, batch int) *Handler {
	if batch <= 0 {
		batch = DefaultBatch
	}
	return &Handler{store: s, now: now, batch: batch}
}

// Handle deletes the expired bookkeeping rows in one transaction with an
// audit row carrying the counts and cut-offs, once per tick.
func (h *Handler) Handle(ctx context.Context, e event.Event) (*event.Event, error) {
	var tick struct {
		Job string `json:"job"`
	}
	if err := e.DataAs(&tick); err != nil {
		return nil, function.Permanentf("decode tick: %w", err)
	}
	log := function.Logger(ctx)
	now := h.now().UTC()
	peBefore := now.Add(-ProcessedEventsRetention)
	outboxBefore := now.Add(-OutboxRetention)
	postsBefore := now.Add(-SlackPostsRetention)
	var pe, ob, sp int64
	dup, err := h.store.Once(ctx, consumer, e.ID(), func(tx pgx.Tx) error {
		var err error
		if pe, err = store.DeleteProcessedEvents(ctx, tx, peBefore, h.batch); err != nil {
			return err
		}
		if ob, err = store.DeletePublishedOutbox(ctx, tx, outboxBefore, h.batch); err != nil {
			return err
		}
		if sp, err = store.DeletePostedSlackPosts(ctx, tx, postsBefore, h.batch); err != nil {
			return err
		}
		return audit.Record(ctx, tx, audit.Entry{
			EventType: audit.HousekeepingDone, CEID: e.ID(),
			Details: map[string]any{
				"processed_events_deleted": pe, "processed_events_before": peBefore,
				"outbox_deleted": ob, "outbox_before": outboxBefore,
				"slack_posts_deleted": sp, "slack_posts_before": postsBefore,
				"batch_limit": h.batch,
			},
		})
	})
	if err != nil {
		return nil, fmt.Errorf("housekeeping: %w", err)
	}
	if dup {
		log.Info("duplicate tick ignored")
		return nil, nil
	}
	log.Info("housekeeping done", "job", tick.Job,
		"processed_events_deleted", pe, "processed_events_before", peBefore,
		"outbox_deleted", ob, "outbox_before", outboxBefore,
		"slack_posts_deleted", sp, "slack_posts_before", postsBefore)
	if pe == int64(h.batch) || ob == int64(h.batch) || sp == int64(h.batch) {
		log.Warn("housekeeping hit its batch limit; the next ticks delete the rest", "batch_limit", h.batch)
	}
	return nil, nil
}
