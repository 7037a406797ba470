// Package kafkatest gives each test a real Kafka-protocol cluster: an
// in-process kfake cluster with the catalog's topics, or the cluster named by
// KAFKA_BROKERS when set (topics are provisioned there too).
package kafkatest

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/coffeebuddy/coffeebuddy/shared/events"
	"github.com/coffeebuddy/coffeebuddy/shared/kafka"
	"github.com/coffeebuddy/coffeebuddy/shared/kafka/kafkaembed"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Cluster is a test's Kafka cluster.
type Cluster struct {
	Brokers  []string
	Embedded *kafkaembed.Cluster // nil when KAFKA_BROKERS is used
}

// New starts (or connects to) a cluster for t and stops it when t ends.
func New(t testing.TB) *Cluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if b := kafka.Brokers(os.Getenv("KAFKA_BROKERS")); len(b) > 0 {
		cl, err := kgo.NewClient(kgo.SeedBrokers(b...))
		if err != nil {
			t.Fatalf("kafkatest: %v", err)
		}
		defer cl.Close()
		if err := kafka.Provision(ctx, cl, events.Topics); err != nil {
			t.Fatalf("kafkatest: %v", err)
		}
		return &Cluster{Brokers: b}
	}
	e, err := kafkaembed.Start(ctx, nil, events.Topics)
	if err != nil {
		t.Fatalf("kafkatest: %v", err)
	}
	t.Cleanup(e.Close)
	return &Cluster{Brokers: e.Brokers(), Embedded: e}
}

// Consume reads records from topic (from the start) until n have arrived or
// the timeout passes, and returns what it got.
func (c *Cluster) Consume(t testing.TB, topic string, n int, timeout time.Duration) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatalf("kafkatest: consumer: %v", err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			break
		}
		fs.EachRecord(func(r *kgo.Record) { out = append(out, r) })
	}
	return out
}
