package standin

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
)

// Duplicate delivery is fault injection: Knative promises at-least-once, so
// every subscriber must shrug off the same CloudEvent arriving more than
// once, and concurrently. Config.Copies and SetCopies make it happen on
// demand instead of only after a crash or a rebalance.

// SetCopies changes, at run time, how many times each delivery attempt to a
// subscriber is sent (0 or 1: once). Attempts already in flight keep the
// count they started with.
func (s *StandIn) SetCopies(n int) { s.copies.Store(int64(n)) }

// CopiesSent is how many extra copies (beyond the originals) have been sent
// to subscribers so far.
func (s *StandIn) CopiesSent() int64 { return s.copiesSent.Load() }

// copyKey marks a copy's request context with its number (1, 2, ...), so
// an instrumented HTTP client in tests can tell copies from the original.
type copyKey struct{}

// postCopies makes one delivery attempt to a subscriber: the original and,
// at the same time, the configured extra copies of the identical request
// (same CloudEvent id, same headers). Only the original's result is
// returned, so it alone decides retry, commit, dead-letter and reply; a
// copy's failure is logged at debug and its reply dropped. It returns once
// the copies are done too, so duplicates never outlive the delivery that
// made them (nor a stopping stand-in's wait for in-flight deliveries).
func (s *StandIn) postCopies(stop context.Context, log *slog.Logger, attempt int, target string, ev event.Event, timeout time.Duration) attemptResult {
	n := s.copies.Load()
	if n <= 1 {
		return s.post(stop, target, ev, timeout)
	}
	var wg sync.WaitGroup
	for i := 1; i < int(n); i++ {
		s.copiesSent.Add(1)
		wg.Go(func() {
			res := s.post(context.WithValue(stop, copyKey{}, i), target, ev, timeout)
			if !res.ok() {
				attrs := []any{slog.Int("attempt", attempt), slog.Int("copy", i), slog.Int("status", res.status)}
				if res.err != nil {
					attrs = append(attrs, slog.String("error", res.err.Error()))
				}
				log.Debug("duplicate copy failed; ignored", attrs...)
			}
		})
	}
	res := s.post(stop, target, ev, timeout)
	wg.Wait()
	return res
}
