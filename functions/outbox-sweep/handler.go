package main

import (
	"context"
	"fmt"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/coffeebuddy/coffeebuddy/shared/function"
)

// Rows younger than minAge are left to the relay of the transaction that
// wrote them; batch bounds one tick's work.
const (
	minAge = 10 * time.Second
	batch  = 500
)

// Sweeper republishes stranded outbox rows.
type Sweeper interface {
	Sweep(ctx context.Context, minAge time.Duration, limit int) (int, error)
}

// Handler runs one sweep per tick, repeating while batches come back full.
type Handler struct{ relay Sweeper }

// New returns the handler.
func New(s Sweeper) *Handler { return &Handler{relay: s} }

// Handle sweeps. Ticks need no dedup: a repeated sweep finds nothing left.
func (h *Handler) Handle(ctx context.Context, _ event.Event) (*event.Event, error) {
	total := 0
	for {
		n, err := h.relay.Sweep(ctx, minAge, batch)
		total += n
		if err != nil {
			return nil, fmt.Errorf("sweep after %d: %w", total, err)
		}
		if n < batch {
			break
		}
	}
	function.Logger(ctx).Info("outbox sweep", "published", total)
	return nil, nil
}
