// Package timers handles a run's moments: the last-call warning, last call
// (closing the run and assigning its runner) and the runner's reminder.
// Each moment is claimed from the database atomically, so the two ways it
// can be reached never do it twice:
//
//   - on time: every run's moments are scheduled as com.coffeebuddy.run.timer
//     events (Schedule, in the transaction that makes the moment known);
//     run-timer holds each until its moment and then handles it (Fire);
//   - as a safety net: the run-tick PingSource (every minute) handles
//     whatever is due and was missed (Tick), e.g. a timer lost with its
//     topic's retention or a run created before timers existed.
package timers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/coffeebuddy/coffeebuddy/shared/audit"
	"github.com/coffeebuddy/coffeebuddy/shared/closing"
	"github.com/coffeebuddy/coffeebuddy/shared/coffee"
	"github.com/coffeebuddy/coffeebuddy/shared/events"
	"github.com/coffeebuddy/coffeebuddy/shared/outbox"
	"github.com/coffeebuddy/coffeebuddy/shared/store"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
)

// Kinds of moments.
const (
	Warn     = "warn"      // last call is WarnBefore away: warn the thread
	LastCall = "last_call" // close the run and assign its runner
	Remind   = "remind"    // the runner was DMed RemindAfter ago: remind them
)

// Kinds lists every kind.
var Kinds = []string{Warn, LastCall, Remind}

const (
	// dueBatch bounds one query for runs past last call; a tick repeats
	// it while batches come back full and closing makes progress.
	dueBatch = 200
	// MaxReminders is how many reminder DMs a runner gets per run.
	MaxReminders = 1
)

// Timing is when moments fall relative to the run's state.
type Timing struct {
	WarnBefore  time.Duration // warn the thread this long before last call
	RemindAfter time.Duration // remind the runner this long after the DM
}

// Due is when run's moment of kind falls, from the run's state alone; ok is
// false when it will not fall any more (the run moved on, the warning or
// the reminders were already given, or no DM went out to remind of).
func Due(run coffee.Run, kind string, t Timing) (time.Time, bool) {
	switch kind {
	case Warn:
		if run.Status != coffee.StatusActive || !run.LastCallWarnedAt.IsZero() {
			return time.Time{}, false
		}
		return run.LastCallAt.Add(-t.WarnBefore), true
	case LastCall:
		if run.Status != coffee.StatusActive {
			return time.Time{}, false
		}
		return run.LastCallAt, true
	case Remind:
		if run.Status != coffee.StatusClosed || run.RunnerUserID == "" || run.ReminderSentAt.IsZero() ||
			run.ReminderCount >= MaxReminders {
			return time.Time{}, false
		}
		return run.ReminderSentAt.Add(t.RemindAfter), true
	}
	return time.Time{}, false
}

// Valid reports whether kind is one of Kinds.
func Valid(kind string) bool {
	for _, k := range Kinds {
		if k == kind {
			return true
		}
	}
	return false
}

// Schedule enqueues, in tx, a timer for run's moment of each kind given;
// the caller publishes the outbox rows after commit.
func Schedule(ctx context.Context, tx pgx.Tx, source string, runID uuid.UUID, kinds ...string) ([]int64, error) {
	ids := make([]int64, 0, len(kinds))
	for _, k := range kinds {
		id, err := outbox.Enqueue(ctx, tx, outbox.Message{
			Type: events.TypeRunTimer, Source: source, Subject: runID.String(), Key: runID.String(),
			Data: events.RunTimer{RunID: runID.String(), Kind: k},
		})
		if err != nil {
			return nil, fmt.Errorf("timers: schedule %s: %w", k, err)
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// Handler does what moments ask, for every run due (Tick) or one run (Fire).
type Handler struct {
	store    *store.Store
	outbox   closing.Publisher
	closer   *closing.Closer
	timing   Timing
	consumer string // processed-events consumer of the closes
	source   string // CloudEvent source of the facts it enqueues
}

// New returns a Handler for the function named consumer; reg (may be nil)
// gets the fairness gauge of the closes it makes.
func New(s *store.Store, p closing.Publisher, reg prometheus.Registerer, t Timing, consumer string) *Handler {
	source := "/coffeebuddy/" + consumer
	return &Handler{store: s, outbox: p, closer: closing.New(s, p, source, reg), timing: t, consumer: consumer, source: source}
}

// Timing returns the handler's timing.
func (h *Handler) Timing() Timing { return h.timing }

// Result counts what was done.
type Result struct {
	Warned, Closed, Reminded int
}

// Tick does everything due at now, for every run: warns runs nearing last
// call, closes runs past it, and reminds runners who have not completed.
// id (the tick's CloudEvent id) tags audit rows and deduplicates the
// closes. Every part runs even if another fails; the joined error makes the
// broker retry.
func (h *Handler) Tick(ctx context.Context, log *slog.Logger, id string, now time.Time) (Result, error) {
	now = now.UTC()
	var res Result
	var errs []error
	var err error
	if res.Warned, err = h.claim(ctx, log, id, now, h.warnings()); err != nil {
		errs = append(errs, fmt.Errorf("warnings: %w", err))
	}
	if res.Closed, err = h.closeDue(ctx, log, id, now); err != nil {
		errs = append(errs, fmt.Errorf("closes: %w", err))
	}
	if res.Reminded, err = h.claim(ctx, log, id, now, h.reminders()); err != nil {
		errs = append(errs, fmt.Errorf("reminders: %w", err))
	}
	return res, errors.Join(errs...)
}

// Fire does run's moment of kind at now, if it is due and not done yet; it
// reports whether it did anything. The close of a last call is
// deduplicated as "<kind>:<run id>", so every timer of one run's last call
// closes it at most once (and closing.Close leaves a closed run alone).
func (h *Handler) Fire(ctx context.Context, log *slog.Logger, id string, runID uuid.UUID, kind string, now time.Time) (bool, error) {
	now = now.UTC()
	switch kind {
	case Warn:
		n, err := h.claim(ctx, log, id, now, h.warnings(runID))
		return n > 0, err
	case Remind:
		n, err := h.claim(ctx, log, id, now, h.reminders(runID))
		return n > 0, err
	case LastCall:
		run, err := store.GetRun(ctx, h.store.DB, runID)
		if err != nil {
			return false, err
		}
		if due, ok := Due(run, LastCall, h.timing); !ok || now.Before(due) {
			return false, nil
		}
		res, err := h.closer.Close(ctx, h.consumer, LastCall+":"+runID.String(), runID, "last_call", now, log)
		return res.Closed, err
	}
	return false, fmt.Errorf("timers: unknown kind %q", kind)
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

// warnings claims the warnings due (of runs, when given).
func (h *Handler) warnings(runs ...uuid.UUID) claimer {
	return func(ctx context.Context, tx pgx.Tx, id string, now time.Time) ([]int64, error) {
		claimed, err := store.ClaimWarnings(ctx, tx, now, h.timing.WarnBefore, runs...)
		if err != nil {
			return nil, err
		}
		return h.enqueueEach(ctx, tx, id, claimed, audit.LastCallWarned, events.TypeLastCallSoon, func(r coffee.Run) map[string]any {
			return map[string]any{"last_call_at": r.LastCallAt, "warn_before": h.timing.WarnBefore.String()}
		})
	}
}

// reminders claims the reminders due (of runs, when given).
func (h *Handler) reminders(runs ...uuid.UUID) claimer {
	return func(ctx context.Context, tx pgx.Tx, id string, now time.Time) ([]int64, error) {
		claimed, err := store.ClaimReminders(ctx, tx, now, h.timing.RemindAfter, MaxReminders, runs...)
		if err != nil {
			return nil, err
		}
		return h.enqueueEach(ctx, tx, id, claimed, audit.ReminderDue, events.TypeReminderDue, func(r coffee.Run) map[string]any {
			return map[string]any{"runner": r.RunnerUserID, "reminder": r.ReminderCount, "last_dm_at": r.ReminderSentAt}
		})
	}
}

// enqueueEach writes, for every run, its audit row and its fact (a RunFact).
func (h *Handler) enqueueEach(ctx context.Context, tx pgx.Tx, id string, runs []coffee.Run, auditType, ceType string,
	details func(coffee.Run) map[string]any) ([]int64, error) {
	ids := make([]int64, 0, len(runs))
	for _, r := range runs {
		if err := audit.Record(ctx, tx, audit.Entry{
			EventType: auditType, TeamID: r.TeamID, ChannelID: r.ChannelID, RunID: r.ID, CEID: id, Details: details(r),
		}); err != nil {
			return nil, err
		}
		oid, err := outbox.Enqueue(ctx, tx, outbox.Message{
			Type: ceType, Source: h.source, Subject: r.ID.String(), Key: r.ID.String(),
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
	failed := map[uuid.UUID]bool{}
	for {
		due, err := store.DueRuns(ctx, h.store.DB, now, dueBatch)
		if err != nil {
			return closed, errors.Join(append(errs, err)...)
		}
		progress := false
		for _, runID := range due {
			if failed[runID] {
				continue
			}
			res, err := h.closer.Close(ctx, h.consumer, id+"/"+runID.String(), runID, "last_call", now, log)
			if err != nil {
				failed[runID] = true
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
