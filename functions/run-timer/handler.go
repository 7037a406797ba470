package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/coffeebuddy/coffeebuddy/shared/coffee"
	"github.com/coffeebuddy/coffeebuddy/shared/events"
	"github.com/coffeebuddy/coffeebuddy/shared/function"
	"github.com/coffeebuddy/coffeebuddy/shared/kafka"
	"github.com/coffeebuddy/coffeebuddy/shared/store"
	"github.com/coffeebuddy/coffeebuddy/shared/timers"
	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"
)

// MaxHold is the longest one delivery holds a timer: well below the
// dispatcher's per-attempt timeout (the eventing stand-in's 1 min; Knative
// Serving's request timeout is 5 min) and a Kafka consumer's session. A
// moment further away is passed on (produced again to coffee.timers) after
// holding this long, and the next delivery holds it further.
const MaxHold = 45 * time.Second

// Producer is the part of *kgo.Client the handler uses.
type Producer interface {
	ProduceSync(ctx context.Context, rs ...*kgo.Record) kgo.ProduceResults
}

// Firer does a run's moment (a *timers.Handler).
type Firer interface {
	Fire(ctx context.Context, log *slog.Logger, id string, runID uuid.UUID, kind string, now time.Time) (bool, error)
	Timing() timers.Timing
}

// Handler holds run timers until their moment.
type Handler struct {
	store    *store.Store
	timers   Firer
	kafka    Producer
	stopping <-chan struct{}
	now      func() time.Time
	maxHold  time.Duration
}

// New returns the handler; stopping is closed at SIGTERM (function.Deps).
func New(s *store.Store, t Firer, p Producer, stopping <-chan struct{}, now func() time.Time) *Handler {
	return &Handler{store: s, timers: t, kafka: p, stopping: stopping, now: now, maxHold: MaxHold}
}

// Handle reads when the timer's moment falls from the run as the database
// has it now (a run that moved on needs nothing more), waits for it, and
// does it (package timers: the same atomic claims as run-tick's, so a
// moment is never done twice). A moment more than MaxHold away, or one the
// process is asked to stop before, is passed on: the timer is produced
// again to coffee.timers (same id, keyed by run) and this delivery
// acknowledged. A timer is never dead-lettered for waiting.
func (h *Handler) Handle(ctx context.Context, e event.Event) (*event.Event, error) {
	var t events.RunTimer
	if err := e.DataAs(&t); err != nil {
		return nil, function.Permanentf("decode %s: %w", e.Type(), err)
	}
	id, err := uuid.Parse(t.RunID)
	if err != nil {
		return nil, function.Permanentf("run id %q: %w", t.RunID, err)
	}
	if !timers.Valid(t.Kind) {
		return nil, function.Permanentf("unknown timer kind %q", t.Kind)
	}
	log := function.Logger(ctx).With("run_id", id, "kind", t.Kind, "hop", t.Hop)
	run, err := store.GetRun(ctx, h.store.DB, id)
	if errors.Is(err, coffee.ErrRunNotFound) {
		return nil, function.Permanent(err)
	}
	if err != nil {
		return nil, err
	}
	due, ok := timers.Due(run, t.Kind, h.timers.Timing())
	if !ok {
		log.Debug("timer has nothing left to do", "status", run.Status)
		return nil, nil
	}
	wait := due.Sub(h.now())
	if err := h.hold(ctx, min(wait, h.maxHold)); err != nil {
		if errors.Is(err, errStopping) {
			return nil, h.passOn(ctx, log, e, t, due, "stopping")
		}
		// The dispatcher gave up on this delivery: it redelivers.
		return nil, fmt.Errorf("holding the %s timer: %w", t.Kind, err)
	}
	if wait > h.maxHold {
		return nil, h.passOn(ctx, log, e, t, due, "not due yet")
	}
	// Claims compare with now: be past the moment, not on it.
	now := h.now()
	if !now.After(due) {
		now = due.Add(time.Millisecond)
	}
	did, err := h.timers.Fire(ctx, log, e.ID(), id, t.Kind, now)
	if err != nil {
		return nil, fmt.Errorf("%s of run %s: %w", t.Kind, id, err)
	}
	log.Info("timer fired", "due", due, "late_ms", h.now().Sub(due).Milliseconds(), "done", did)
	return nil, nil
}

// errStopping: the process was asked to stop while holding a timer.
var errStopping = errors.New("stopping")

// hold waits d, unless the process is stopping (errStopping) or the request
// ends first (its context's error).
func (h *Handler) hold(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-h.stopping:
		return errStopping
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// passOn produces the timer again, one hop further, to wait on in a later
// delivery. If that fails the error makes the broker redeliver this one.
func (h *Handler) passOn(ctx context.Context, log *slog.Logger, e event.Event, t events.RunTimer, due time.Time, why string) error {
	next := e.Clone()
	t.Hop++
	if err := next.SetData(event.ApplicationJSON, t); err != nil {
		return fmt.Errorf("encode timer: %w", err)
	}
	rec, err := kafka.Record(events.TopicTimers, t.RunID, next)
	if err != nil {
		return fmt.Errorf("encode timer record: %w", err)
	}
	// The request may be ending (stopping): the hand-over must still happen.
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := h.kafka.ProduceSync(pctx, rec).FirstErr(); err != nil {
		return fmt.Errorf("pass the timer on: %w", err)
	}
	log.Debug("timer passed on", "why", why, "due", due)
	return nil
}
