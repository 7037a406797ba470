package main

import (
	"context"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/coffeebuddy/coffeebuddy/shared/closing"
	"github.com/coffeebuddy/coffeebuddy/shared/function"
	"github.com/coffeebuddy/coffeebuddy/shared/store"
	"github.com/coffeebuddy/coffeebuddy/shared/timers"
	"github.com/prometheus/client_golang/prometheus"
)

const (
	consumer = "run-tick"
	job      = "run-tick"
)

// Timing is when the tick warns and reminds.
type Timing = timers.Timing

// Result counts what one tick did.
type Result = timers.Result

// Handler is the safety net behind run-timer: every minute it does whatever
// is due and was not done on time (see package timers). It keeps no state
// between ticks, so a restarted or scaled-from-zero instance picks up
// whatever is due.
type Handler struct {
	timers *timers.Handler
	now    func() time.Time
}

// New returns the handler. reg (may be nil) gets the fairness gauge of the
// closes it makes; now is the clock (time.Now in production).
func New(s *store.Store, p closing.Publisher, reg prometheus.Registerer, t Timing, now func() time.Time) *Handler {
	return &Handler{timers: timers.New(s, p, reg, t, consumer), now: now}
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

// Tick does everything due at now; id (the tick's CloudEvent id) tags audit
// rows and deduplicates the closes.
func (h *Handler) Tick(ctx context.Context, id string, now time.Time) (Result, error) {
	log := function.Logger(ctx)
	res, err := h.timers.Tick(ctx, log, id, now)
	if err != nil {
		log.Error("tick incomplete", "warned", res.Warned, "closed", res.Closed, "reminded", res.Reminded, "err", err)
	} else {
		log.Info("tick", "warned", res.Warned, "closed", res.Closed, "reminded", res.Reminded)
	}
	return res, err
}
