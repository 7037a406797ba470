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

const consumer = "prefs-purge"

// Retention is how long a drink+size preference is kept after it was last
// ordered.
const Retention = 90 * 24 * time.Hour

// Handler purges stale preferences.
type Handler struct {
	store *store.Store
	now   func() time.Time
}

// New returns the handler.
func New(s *store.Store, now func() time.Time) *Handler { return &Handler{store: s, now: now} }

// Handle deletes preferences untouched for Retention, with an audit row
// carrying the count, once per tick.
func (h *Handler) Handle(ctx context.Context, e event.Event) (*event.Event, error) {
	var tick struct {
		Job string `json:"job"`
	}
	if err := e.DataAs(&tick); err != nil {
		return nil, function.Permanentf("decode tick: %w", err)
	}
	log := function.Logger(ctx)
	before := h.now().UTC().Add(-Retention)
	var n int64
	dup, err := h.store.Once(ctx, consumer, e.ID(), func(tx pgx.Tx) error {
		var err error
		if n, err = store.PurgePreferences(ctx, tx, before); err != nil {
			return err
		}
		return audit.Record(ctx, tx, audit.Entry{
			EventType: audit.PrefsPurged, CEID: e.ID(),
			Details: map[string]any{"deleted": n, "before": before, "retention_days": int(Retention.Hours() / 24)},
		})
	})
	if err != nil {
		return nil, fmt.Errorf("purge preferences: %w", err)
	}
	if dup {
		log.Info("duplicate tick ignored")
		return nil, nil
	}
	log.Info("preferences purged", "deleted", n, "before", before, "job", tick.Job)
	return nil, nil
}
