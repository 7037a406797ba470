package standin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/coffeebuddy/coffeebuddy/shared/kafka"
	"github.com/twmb/franz-go/pkg/kgo"
)

// consumer is one route's Kafka consumer group (a Trigger's, like the Kafka
// Broker's per-Trigger groups). Each partition has its own worker goroutine,
// so partitions proceed in parallel; within one, records are delivered one
// at a time in order (an ordered Trigger) or several at once (unordered, see
// workUnordered). Either way an offset is committed only once its record and
// every record before it are done with.
type consumer struct {
	s      *StandIn
	g      *generation
	kr     *kafkaRoute
	cl     *kgo.Client
	log    *slog.Logger
	joined func()
	once   sync.Once

	mu    sync.Mutex
	parts map[topicPartition]*partition
}

// fetchMaxWait bounds a fetch long-poll (franz-go's default is 5s).
const fetchMaxWait = 500 * time.Millisecond

type topicPartition struct {
	topic     string
	partition int32
}

// A partition's worker delivers its records while the poll loop goes on for
// the others: the loop only queues. A partition whose backlog grows (its
// head record is retrying, or its unordered window is full) is paused, so
// fetching stops for it alone, and resumed once its worker catches up.
const (
	pauseAtBatches  = 4
	resumeAtBatches = 1
)

type partition struct {
	mu      sync.Mutex
	backlog [][]*kgo.Record
	paused  bool
	wake    chan struct{} // capacity 1: "the backlog has work"
	quit    chan struct{}
	done    chan struct{}
	once    sync.Once
}

// push queues recs and reports whether the partition should now be paused.
func (p *partition) push(recs []*kgo.Record) (pause bool) {
	p.mu.Lock()
	p.backlog = append(p.backlog, recs)
	pause = !p.paused && len(p.backlog) >= pauseAtBatches
	if pause {
		p.paused = true
	}
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
	return pause
}

// pop takes the oldest batch; resume reports that the partition was paused
// and its backlog is now small enough to fetch again.
func (p *partition) pop() (recs []*kgo.Record, ok, resume bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.backlog) == 0 {
		return nil, false, false
	}
	recs, p.backlog = p.backlog[0], p.backlog[1:]
	if p.paused && len(p.backlog) <= resumeAtBatches {
		p.paused, resume = false, true
	}
	return recs, true, resume
}

func (p *partition) stop() {
	p.once.Do(func() { close(p.quit) })
	<-p.done
}

func (s *StandIn) newConsumer(g *generation, kr *kafkaRoute, joined func()) (*consumer, error) {
	c := &consumer{
		s: s, g: g, kr: kr, joined: joined,
		log: s.log.With(
			slog.String("trigger", kr.name), slog.String("consumer_group", kr.group),
			slog.String("subscriber", kr.subscriber.String()),
		),
		parts: map[topicPartition]*partition{},
	}
	reset := kgo.NewOffset().AtStart()
	if kr.source.Spec.InitialOffset == "latest" {
		reset = kgo.NewOffset().AtEnd()
	}
	cl, err := kafka.NewClient(s.cfg.Brokers, kafkaLogger(c.log), nil,
		kgo.ConsumerGroup(kr.group),
		kgo.ConsumeTopics(kr.source.Spec.Topics...),
		kgo.ConsumeResetOffset(reset),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		// franz-go keeps one fetch in flight per broker; a partition that
		// becomes fetchable while a long poll is out (e.g. after its
		// committed offset is validated on join) waits for it to return.
		// A short max wait keeps that, and so a reload, under a second.
		kgo.FetchMaxWait(fetchMaxWait),
		kgo.OnPartitionsAssigned(c.assigned),
		kgo.OnPartitionsRevoked(c.revoked),
		kgo.OnPartitionsLost(c.revoked),
	)
	if err != nil {
		return nil, err
	}
	c.cl = cl
	return c, nil
}

func (c *consumer) run() {
	defer func() {
		// Finish in-flight deliveries and their commits, then leave the
		// group.
		c.mu.Lock()
		parts := make([]*partition, 0, len(c.parts))
		for tp, p := range c.parts {
			parts = append(parts, p)
			delete(c.parts, tp)
		}
		c.mu.Unlock()
		for _, p := range parts {
			p.stop()
		}
		c.cl.Close()
		c.once.Do(c.joined) // never joined: do not hold Ready forever
	}()
	ctx := c.g.ctx
	for {
		fetches := c.cl.PollRecords(ctx, 1000)
		if fetches.IsClientClosed() || ctx.Err() != nil {
			c.cl.AllowRebalance()
			return
		}
		fetches.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.Canceled) {
				c.log.Warn("fetch error", slog.String("topic", topic), slog.Int("partition", int(p)), slog.String("error", err.Error()))
			}
		})
		fetches.EachPartition(func(fp kgo.FetchTopicPartition) {
			if len(fp.Records) == 0 {
				return
			}
			p := c.partition(fp.Topic, fp.Partition)
			if p.push(fp.Records) {
				c.cl.PauseFetchPartitions(map[string][]int32{fp.Topic: {fp.Partition}})
			}
		})
		c.cl.AllowRebalance()
	}
}

// partition returns (starting if needed) the worker for topic/partition.
func (c *consumer) partition(topic string, part int32) *partition {
	c.mu.Lock()
	defer c.mu.Unlock()
	tp := topicPartition{topic, part}
	if p, ok := c.parts[tp]; ok {
		return p
	}
	p := &partition{wake: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{})}
	c.parts[tp] = p
	if c.kr.order == Unordered {
		go c.workUnordered(tp, p)
	} else {
		go c.work(tp, p)
	}
	return p
}

func (c *consumer) assigned(_ context.Context, _ *kgo.Client, assigned map[string][]int32) {
	for topic, parts := range assigned {
		for _, p := range parts {
			c.partition(topic, p)
		}
	}
	c.log.Debug("partitions assigned", slog.Any("partitions", assigned))
	c.once.Do(c.joined)
}

// revoked stops the workers of partitions this member loses; their
// in-flight deliveries finish and are committed first.
func (c *consumer) revoked(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	var stop []*partition
	c.mu.Lock()
	for topic, parts := range lost {
		for _, part := range parts {
			tp := topicPartition{topic, part}
			if p, ok := c.parts[tp]; ok {
				stop = append(stop, p)
				delete(c.parts, tp)
			}
		}
	}
	c.mu.Unlock()
	for _, p := range stop {
		p.stop()
	}
	// Pauses outlive a rebalance in franz-go; a partition that comes back
	// to this member must be fetchable.
	c.cl.ResumeFetchPartitions(lost)
}

// work delivers one partition's records in order, one at a time.
func (c *consumer) work(tp topicPartition, p *partition) {
	defer close(p.done)
	c.drain(tp, p, c.deliver)
}

// drain hands p's backlog to take, a batch at a time, each time the poll
// loop wakes it, resuming the partition's fetches when the backlog has room
// again, until p is quit. Once take reports halted (stopping: leave the
// rest uncommitted) it takes no more.
func (c *consumer) drain(tp topicPartition, p *partition, take func([]*kgo.Record) (halted bool)) {
	halted := false
	for {
		select {
		case <-p.quit:
			return
		case <-p.wake:
		}
		for !halted {
			recs, ok, resume := p.pop()
			if !ok {
				break
			}
			if resume {
				c.cl.ResumeFetchPartitions(map[string][]int32{tp.topic: {tp.partition}})
			}
			halted = take(recs)
		}
	}
}

// deliver delivers and commits one batch; it reports whether the stand-in
// stopped mid-batch (the rest stays uncommitted).
func (c *consumer) deliver(recs []*kgo.Record) (halted bool) {
	var pending *kgo.Record // done with, not yet committed
	for _, r := range recs {
		if c.g.ctx.Err() != nil {
			halted = true
			break
		}
		delivered, err := c.handle(r)
		if err != nil {
			halted = true
			break
		}
		pending = r
		if delivered {
			c.commit(pending)
			pending = nil
		}
	}
	if pending != nil {
		c.commit(pending)
	}
	return halted
}

// handle delivers r if it passes the route's filter. It reports whether a
// delivery happened; an error means the stand-in stopped mid-delivery.
func (c *consumer) handle(r *kgo.Record) (bool, error) {
	ev, pass := c.event(r)
	if !pass {
		return false, nil
	}
	return true, c.s.deliver(c.g.ctx, c.g.m, &c.kr.route, ev, r.Key)
}

// event is the event KafkaSource makes of r, and whether it passes the
// route's filter.
func (c *consumer) event(r *kgo.Record) (event.Event, bool) {
	ev, isCE := recordEvent(c.kr.source, r)
	if !isCE {
		c.log.Debug("record is not a CloudEvent; wrapped as "+KafkaEventType,
			slog.String("topic", r.Topic), slog.Int("partition", int(r.Partition)), slog.Int64("offset", r.Offset))
	}
	return ev, Matches(c.kr.filter, ev)
}

// commit commits up to and including r; a failure is logged (the record
// may be delivered again) and returned.
func (c *consumer) commit(r *kgo.Record) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.cl.CommitRecords(ctx, r); err != nil {
		c.log.Error("commit failed; the record may be delivered again",
			slog.String("topic", r.Topic), slog.Int("partition", int(r.Partition)), slog.Int64("offset", r.Offset),
			slog.String("error", err.Error()))
		return fmt.Errorf("standin: commit %s/%d@%d: %w", r.Topic, r.Partition, r.Offset, err)
	}
	return nil
}
