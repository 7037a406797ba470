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

// consumer names the processed_events rows and the run lock.
const consumer = "audit-retention"

// errRunning answers a tick while another run holds the lock: 409, so the
// broker retries later, when that run has finished (and this tick is then
// a duplicate) or failed (and this one does the work).
var errRunning error = running{}

type running struct{}

func (running) Error() string { return "audit-retention: another run is deleting right now" }
func (running) Busy() bool    { return true }

// Options configure the handler.
type Options struct {
	Retention time.Duration // rows older than this at the tick's time go
	Limits    audit.Limits
	Now       func() time.Time
	// Stopping, closed on SIGTERM, ends a run before its next batch.
	Stopping <-chan struct{}
}

// Handler deletes expired audit rows once per tick.
type Handler struct {
	store *store.Store
	opt   Options
	// deleteExpired is audit.DeleteExpired; tests make it fail part-way.
	deleteExpired func(ctx context.Context, q audit.Querier, before time.Time, lim audit.Limits) (audit.Deletion, error)
}

// New returns the handler.
func New(s *store.Store, opt Options) *Handler {
	return &Handler{store: s, opt: opt, deleteExpired: audit.DeleteExpired}
}

// Handle deletes the audit rows older than the retention at the tick's time
// and writes one audit_retention row for the tick. Each batch commits on
// its own, so a run is not one transaction: a lock keeps runs from
// overlapping, the processed_events row (written with the audit row) makes
// a redelivered tick a no-op, and a run that fails part-way audits what it
// did before the retry carries on.
func (h *Handler) Handle(ctx context.Context, e event.Event) (*event.Event, error) {
	var tick struct {
		Job string `json:"job"`
	}
	if err := e.DataAs(&tick); err != nil {
		return nil, function.Permanentf("decode tick: %w", err)
	}
	log := function.Logger(ctx)
	cutoff := h.cutoff(e)

	release, ok, err := store.TryRunLock(ctx, h.store.DB, consumer)
	if err != nil {
		return nil, fmt.Errorf("audit retention: %w", err)
	}
	if !ok {
		return nil, errRunning
	}
	defer release()
	if done, err := store.Processed(ctx, h.store.DB, consumer, e.ID()); err != nil {
		return nil, fmt.Errorf("audit retention: %w", err)
	} else if done {
		log.Info("duplicate tick ignored")
		return nil, nil
	}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-h.opt.Stopping:
			cancel()
		case <-runCtx.Done():
		}
	}()
	d, delErr := h.deleteExpired(runCtx, h.store.DB, cutoff, h.opt.Limits)
	details := map[string]any{
		"deleted": d.Deleted, "cut_off": cutoff, "batches": d.Batches, "took_ms": d.Took.Milliseconds(),
		"capped": d.Capped, "retention": h.opt.Retention.String(), "batch_limit": h.opt.Limits.Batch,
	}
	attrs := []any{"job", tick.Job, "deleted", d.Deleted, "cut_off", cutoff, "batches", d.Batches,
		"took_ms", d.Took.Milliseconds(), "capped", d.Capped}
	if delErr != nil {
		// The committed batches are gone whatever happens next: audit them
		// now, not under the tick's processed row, so the retry still runs
		// and writes the tick's own row for what it deletes.
		if d.Deleted > 0 {
			details["incomplete"], details["error"] = true, delErr.Error()
			wctx, wcancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			err := pgx.BeginFunc(wctx, h.store.DB, func(tx pgx.Tx) error {
				return audit.Record(wctx, tx, audit.Entry{EventType: audit.RetentionDone, CEID: e.ID(), Details: details})
			})
			wcancel()
			if err != nil {
				log.Error("could not audit a partial audit retention run", append(attrs, "err", err)...)
			}
		}
		return nil, fmt.Errorf("audit retention: %w", delErr)
	}
	dup, err := h.store.Once(ctx, consumer, e.ID(), func(tx pgx.Tx) error {
		return audit.Record(ctx, tx, audit.Entry{EventType: audit.RetentionDone, CEID: e.ID(), Details: details})
	})
	if err != nil {
		return nil, fmt.Errorf("audit retention: %w", err)
	}
	if dup { // cannot happen under the lock; kept honest
		log.Info("duplicate tick ignored")
		return nil, nil
	}
	log.Info("audit retention done", attrs...)
	if d.Capped {
		log.Warn("audit retention hit its per-run limit; the next ticks delete the rest",
			"max_rows", h.opt.Limits.MaxRows, "max_duration", h.opt.Limits.MaxDuration.String())
	}
	return nil, nil
}

// cutoff is the tick's time (the PingSource's schedule time, the same on
// every redelivery) minus the retention; never later than now minus the
// retention, so a clock ahead on the sender deletes nothing young.
func (h *Handler) cutoff(e event.Event) time.Time {
	at, now := e.Time(), h.opt.Now()
	if at.IsZero() || at.After(now) {
		at = now
	}
	// PostgreSQL keeps microseconds: the audit row's cut_off is then
	// exactly the one the DELETE used.
	return at.UTC().Add(-h.opt.Retention).Truncate(time.Microsecond)
}
