package kafka_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/coffeebuddy/coffeebuddy/shared/events"
	"github.com/coffeebuddy/coffeebuddy/shared/kafka"
	"github.com/coffeebuddy/coffeebuddy/shared/kafka/kafkatest"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
)

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

func TestNewClientNoBrokers(t *testing.T) {
	for _, b := range [][]string{nil, {}} {
		if cl, err := kafka.NewClient(b, discard(), nil); err == nil {
			cl.Close()
			t.Errorf("NewClient(%q) succeeded, want an error", b)
		}
	}
}

func TestProduceConsumeRoundTrip(t *testing.T) {
	kc := kafkatest.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	reg := prometheus.NewRegistry()
	cl, err := kafka.NewClient(kc.Brokers, discard(), reg)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	defer cl.Close()
	if err := kafka.Ping(ctx, cl); err != nil {
		t.Fatalf("Ping: %v", err)
	}

	// A topic of our own, so an external KAFKA_BROKERS cluster reused
	// across runs does not hand us old records.
	topic := events.Topic{Name: fmt.Sprintf("test.roundtrip.%d", time.Now().UnixNano()),
		Partitions: 3, ReplicationFactor: 2, Retention: time.Hour}
	if err := kafka.Provision(ctx, cl, []events.Topic{topic}); err != nil {
		t.Fatalf("Provision: %v", err)
	}

	want := fullEvent(t)
	rec, err := kafka.Record(topic.Name, "", want)
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}

	got := kc.Consume(t, topic.Name, 1, 30*time.Second)
	if len(got) != 1 {
		t.Fatalf("consumed %d records, want 1", len(got))
	}
	r := got[0]
	if string(r.Key) != "run-42" {
		t.Errorf("key = %q, want run-42", r.Key)
	}
	if r.Partition != rec.Partition {
		t.Errorf("consumed from partition %d, produced to %d", r.Partition, rec.Partition)
	}
	ev, err := kafka.Event(r)
	if err != nil {
		t.Fatalf("Event: %v", err)
	}
	assertSameEvent(t, ev, want)

	// The same key always lands on the same partition (murmur2 keyed
	// partitioning, not sticky-random).
	for range 5 {
		again, err := kafka.Record(topic.Name, "", want)
		if err != nil {
			t.Fatal(err)
		}
		if err := cl.ProduceSync(ctx, again).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if again.Partition != rec.Partition {
			t.Errorf("key run-42 went to partition %d, then %d", rec.Partition, again.Partition)
		}
	}

	// kprom exports the client's metrics to the registry it was given.
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, mf := range mfs {
		names = append(names, mf.GetName())
	}
	if !strings.Contains(strings.Join(names, " "), "kafka_produce_") {
		t.Errorf("registry has no kafka_produce_* metrics: %v", names)
	}
}

func TestNewClientExtraOptions(t *testing.T) {
	kc := kafkatest.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := kafka.NewClient(kc.Brokers, discard(), nil, kgo.DefaultProduceTopic(events.TopicDeadLetter))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	r := &kgo.Record{Value: []byte("x")}
	if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
		t.Fatalf("produce with the extra default-topic option: %v", err)
	}
	if r.Topic != events.TopicDeadLetter {
		t.Errorf("topic = %q, want the extra option's %q", r.Topic, events.TopicDeadLetter)
	}
}
