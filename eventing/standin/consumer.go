package standin

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/coffeebuddy/coffeebuddy/shared/kafka"
	"github.com/twmb/franz-go/pkg/kgo"
)

// consumer is one route's Kafka consumer group (a Trigger's, like the Kafka
// Broker's per-Trigger groups): records of a partition are delivered one at
// a time, in order; partitions proceed in parallel, each in its own
// goroutine; an offset is committed only once its record is done with.
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

type partition struct {
	recs chan []*kgo.Record
	quit chan struct{}
	done chan struct{}
	once sync.Once
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
			select {
			case p.recs <- fp.Records:
			case <-ctx.Done():
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
	p := &partition{recs: make(chan []*kgo.Record, 4), quit: make(chan struct{}), done: make(chan struct{})}
	c.parts[tp] = p
	go c.work(tp, p)
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
}

// work delivers one partition's records in order.
func (c *consumer) work(tp topicPartition, p *partition) {
	defer close(p.done)
	halted := false // stopping: leave the rest uncommitted
	for {
		select {
		case <-p.quit:
			return
		case recs := <-p.recs:
			if halted {
				continue
			}
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
		}
	}
}

// handle delivers r if it passes the route's filter. It reports whether a
// delivery happened; an error means the stand-in stopped mid-delivery.
func (c *consumer) handle(r *kgo.Record) (bool, error) {
	ev, isCE := recordEvent(c.kr.source, r)
	if !isCE {
		c.log.Debug("record is not a CloudEvent; wrapped as "+KafkaEventType,
			slog.String("topic", r.Topic), slog.Int("partition", int(r.Partition)), slog.Int64("offset", r.Offset))
	}
	if !Matches(c.kr.filter, ev) {
		return false, nil
	}
	return true, c.s.deliver(c.g.ctx, c.g.m, &c.kr.route, ev, r.Key)
}

func (c *consumer) commit(r *kgo.Record) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.cl.CommitRecords(ctx, r); err != nil {
		c.log.Error("commit failed; the record may be delivered again",
			slog.String("topic", r.Topic), slog.Int("partition", int(r.Partition)), slog.Int64("offset", r.Offset),
			slog.String("error", err.Error()))
	}
}
