package standin

import (
	"context"
	"math/rand/v2"
	"time"
)

// Shuffled delivery is fault injection for unordered Triggers: Knative's
// unordered dispatch sends a partition's records concurrently, so they reach
// a subscriber in whatever order the network and the scheduler give. The
// stand-in's concurrent deliveries, on one machine, mostly arrive in offset
// order anyway; SetShuffle makes each wait a random time first, so a
// subscriber that only works when events arrive in order is caught.
// Ordered Triggers are not affected: one at a time is their contract.

// SetShuffle makes every delivery of an unordered Trigger wait a random time
// in [0, max) before it goes out; 0 turns it off. Deliveries already
// waiting keep their delay.
func (s *StandIn) SetShuffle(max time.Duration) { s.shuffle.Store(int64(max)) }

// Shuffled is how many deliveries have been delayed by SetShuffle so far.
func (s *StandIn) Shuffled() int64 { return s.shuffled.Load() }

// shuffleWait waits the random delay SetShuffle asks for; false when ctx
// ended first (the stand-in is stopping: the record is not delivered).
func (s *StandIn) shuffleWait(ctx context.Context) bool {
	max := time.Duration(s.shuffle.Load())
	if max <= 0 {
		return true
	}
	s.shuffled.Add(1)
	t := time.NewTimer(rand.N(max))
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
