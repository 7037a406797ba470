package standin

import (
	"sync"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kgo"
)

// workUnordered delivers one partition's records concurrently, as the Kafka
// Broker's unordered consumer does: up to Config.UnorderedMaxInFlight at
// once, each with its own retries, backoff and dead-lettering, so a slow or
// retrying record holds up none after it. Offsets are committed in order
// (see offsetTracker). When the window is full the worker waits, its backlog
// grows and the poll loop pauses the partition, as in ordered mode.
//
// Stopping (or losing the partition) starts no new record; in-flight ones
// finish their HTTP attempt (and, on a rebalance, their retries), and only
// the done prefix is committed, so unfinished records are delivered again.
func (c *consumer) workUnordered(tp topicPartition, p *partition) {
	defer close(p.done)
	w := &window{
		c:       c,
		slots:   make(chan struct{}, c.s.cfg.UnorderedMaxInFlight),
		offsets: newOffsetTracker(tp.topic, tp.partition, c.commit),
	}
	defer w.inFlight.Wait() // before done: the owner waits for our commits
	c.drain(tp, p, func(recs []*kgo.Record) bool { return !w.dispatch(p, recs) })
}

// window is an unordered partition's records in flight.
type window struct {
	c        *consumer
	slots    chan struct{} // one per record in flight
	inFlight sync.WaitGroup
	offsets  *offsetTracker
	stopped  atomic.Bool // a delivery was cut short by stopping
}

// dispatch starts a delivery per record of recs, in order, waiting for a
// free slot when the window is full. Filtered-out records are done at once,
// and committed with the batch rather than one by one. It reports false
// once the stand-in is stopping or the partition is gone.
func (w *window) dispatch(p *partition, recs []*kgo.Record) bool {
	c := w.c
	defer w.offsets.flush()
	for _, r := range recs {
		select {
		case <-c.g.ctx.Done():
			return false
		case <-p.quit:
			return false
		default:
		}
		if w.stopped.Load() {
			return false
		}
		ev, pass := c.event(r)
		if !pass {
			w.offsets.done(w.offsets.track(r))
			continue
		}
		select {
		case w.slots <- struct{}{}:
		case <-c.g.ctx.Done():
			return false
		case <-p.quit:
			return false
		}
		e := w.offsets.track(r)
		w.inFlight.Add(1)
		go func() {
			defer w.inFlight.Done()
			defer func() { <-w.slots }()
			if !c.s.shuffleWait(c.g.ctx) {
				w.stopped.Store(true) // not delivered: e stays not done
				return
			}
			if err := c.s.deliver(c.g.ctx, c.g.m, &c.kr.route, ev, r.Key); err != nil {
				w.stopped.Store(true) // e stays not done: nothing at or above it is committed
				return
			}
			w.offsets.done(e)
			w.offsets.flush()
			if c.s.settled != nil {
				c.s.settled(r.Topic, r.Partition, r.Offset)
			}
		}()
	}
	return true
}
