package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/coffeebuddy/coffeebuddy/shared/audit"
	"github.com/coffeebuddy/coffeebuddy/shared/closing"
	"github.com/coffeebuddy/coffeebuddy/shared/coffee"
	"github.com/coffeebuddy/coffeebuddy/shared/events"
	"github.com/coffeebuddy/coffeebuddy/shared/function"
	"github.com/coffeebuddy/coffeebuddy/shared/outbox"
	"github.com/coffeebuddy/coffeebuddy/shared/store"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
)

const (
	consumer = "run-tick"
	source   = "/coffeebuddy/run-tick"
	job      = "run-tick"
	// dueBatch bounds one query for runs past last call; a tick repeats
	// it while batches come back full and closing makes progress.
	dueBatch = 200
	// maxReminders is how many reminder DMs a runner gets per run.
	maxReminders = 1
)

// Timing is when the tick warns and reminds.
type Timing struct {
	WarnBefore  time.Duration // warn the thread this long before last call
	RemindAfter time.Duration // remind the runner this long after the DM
}

// Handler drives every run's timers from the database. It keeps no state
// between ticks, so a restarted or scaled-from-zero instance picks up
// whatever is due.
type Handler struct {
	store  *store.Store
	outbox closing.Publisher
	closer *closing.Closer
	timing Timing
	now    func() time.Time
}

// New returns the handler. reg (may be nil) gets the fairness gauge of the
// closes it makes; now is the clock (time.Now in production).
func New(s *store.Store, p closing.Publisher, reg prometheus.Registerer, t Timing, now func() time.Time) *Handler {
	return &Handler{store: s, outbox: p, closer: closing.New(s, p, source, reg), timing: t, now: now}
}

// Result counts what one tick did.
type Result struct {
	Warned, Closed, Reminded int
}

// Handle runs one tick at the handler's clock. Ticks need no dedup of their
// own: every claim is an atomic UPDATE, so overlapping or redelivered ticks
// find nothing left to do.
func (h *Handler) Handle(ctx context.Context, e event.Event) (*event.Event, error) {
	if len(e.Data()) > 0 {
		var ping struct {
			Job string `json:"job"`
		}
		if err := e.DataAs(&ping); err != nil {
			return nil, function.Permanentf("decode ping: %w", err)
		}
		if ping.Job != "" && ping.Job != job {
			return nil, function.Permanentf("ping for job %q, not %q", ping.Job, job)
		}
	}
	_, err := h.Tick(ctx, e.ID(), h.now())
	return nil, err
}

// Tick does everything due at now: warns runs nearing last call, closes
// runs past it, and reminds runners who have not completed. id (the tick's
// CloudEvent id) tags audit rows and deduplicates the closes. Every part
// runs even if another fails; the joined error makes the broker retry.
func (h *Handler) Tick(ctx context.Context, id string, now time.Time) (Result, error) {
	log := function.Logger(ctx)
	now = now.UTC()
	var res Result
	var errs []error
	var err error
	if res.Warned, err = h.claim(ctx, log, id, now, h.claimWarnings); err != nil {
		errs = append(errs, fmt.Errorf("warnings: %w", err))
	}
	if res.Closed, err = h.closeDue(ctx, log, id, now); err != nil {
		errs = append(errs, fmt.Errorf("closes: %w", err))
	}
	if res.Reminded, err = h.claim(ctx, log, id, now, h.claimReminders); err != nil {
		errs = append(errs, fmt.Errorf("reminders: %w", err))
	}
	err = errors.Join(errs...)
	if err != nil {
		log.Error("tick incomplete", "warned", res.Warned, "closed", res.Closed, "reminded", res.Reminded, "err", err)
	} else {
		log.Info("tick", "warned", res.Warned, "closed", res.Closed, "reminded", res.Reminded)
	}
	return res, err
}

// claimer claims runs in tx and enqueues one outbox event per run, with its
// audit row; it returns the outbox ids.
type claimer func(ctx context.Context, tx pgx.Tx, id string, now time.Time) ([]int64, error)

// claim runs c in one transaction and publishes what it enqueued after the
// commit. A failed publish is left to the outbox sweep.
func (h *Handler) claim(ctx context.Context, log *slog.Logger, id string, now time.Time, c claimer) (int, error) {
	var ids []int64
	err := pgx.BeginFunc(ctx, h.store.DB, func(tx pgx.Tx) error {
		var err error
		ids, err = c(ctx, tx, id, now)
		return err
	})
	if err != nil {
		return 0, err
	}
	if err := h.outbox.Publish(ctx, ids...); err != nil {
		log.Warn("outbox publish deferred to the sweep", "err", err)
	}
	return len(ids), nil
}

func (h *Handler) claimWarnings(ctx context.Context, tx pgx.Tx, id string, now time.Time) ([]int64, error) {
	runs, err := store.ClaimWarnings(ctx, tx, now, h.timing.WarnBefore)
	if err != nil {
		return nil, err
	}
	return enqueueEach(ctx, tx, id, runs, audit.LastCallWarned, events.TypeLastCallSoon, func(r coffee.Run) map[string]any {
		return map[string]any{"last_call_at": r.LastCallAt, "warn_before": h.timing.WarnBefore.String()}
	})
}

func (h *Handler) claimReminders(ctx context.Context, tx pgx.Tx, id string, now time.Time) ([]int64, error) {
	runs, err := store.ClaimReminders(ctx, tx, now, h.timing.RemindAfter, maxReminders)
	if err != nil {
		return nil, err
	}
	return enqueueEach(ctx, tx, id, runs, audit.ReminderDue, events.TypeReminderDue, func(r coffee.Run) map[string]any {
		return map[string]any{"runner": r.RunnerUserID, "reminder": r.ReminderCount, "last_dm_at": r.ReminderSentAt}
	})
}

// enqueueEach writes, for every run, its audit row and its fact (a RunFact).
func enqueueEach(ctx context.Context, tx pgx.Tx, id string, runs []coffee.Run, auditType, ceType string,
	details func(coffee.Run) map[string]any) ([]int64, error) {
	ids := make([]int64, 0, len(runs))
	for _, r := range runs {
		if err := audit.Record(ctx, tx, audit.Entry{
			EventType: auditType, TeamID: r.TeamID, ChannelID: r.ChannelID, RunID: r.ID, CEID: id, Details: details(r),
		}); err != nil {
			return nil, err
		}
		oid, err := outbox.Enqueue(ctx, tx, outbox.Message{
			Type: ceType, Source: source, Subject: r.ID.String(), Key: r.ID.String(),
			Data: events.RunFact{RunID: r.ID.String()},
		})
		if err != nil {
			return nil, err
		}
		ids = append(ids, oid)
	}
	return ids, nil
}

// closeDue closes every active run past its last call, each in its own
// transaction (shared closing code: assignment, audit, run.closed). A run
// that fails to close does not stop the others.
func (h *Handler) closeDue(ctx context.Context, log *slog.Logger, id string, now time.Time) (int, error) {
	closed := 0
	var errs []error
	failed := map[string]bool{}
	for {
		due, err := store.DueRuns(ctx, h.store.DB, now, dueBatch)
		if err != nil {
			return closed, errors.Join(append(errs, err)...)
		}
		progress := false
		for _, runID := range due {
			if failed[runID.String()] {
				continue
			}
			res, err := h.closer.Close(ctx, consumer, id+"/"+runID.String(), runID, "last_call", now, log)
			if err != nil {
				failed[runID.String()] = true
				errs = append(errs, err)
				continue
			}
			if res.Closed {
				closed++
				progress = true
			}
		}
		if len(due) < dueBatch || !progress {
			return closed, errors.Join(errs...)
		}
	}
}
