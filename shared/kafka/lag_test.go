package kafka_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/coffeebuddy/coffeebuddy/shared/events"
	"github.com/coffeebuddy/coffeebuddy/shared/kafka"
	"github.com/coffeebuddy/coffeebuddy/shared/kafka/kafkatest"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// values gathers c into name → labels → value.
func values(t *testing.T, c prometheus.Collector) map[string]map[string]float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]float64{}
	for _, mf := range mfs {
		out[mf.GetName()] = map[string]float64{}
		for _, m := range mf.GetMetric() {
			key := ""
			for _, l := range m.GetLabel() {
				key += l.GetName() + "=" + l.GetValue() + ","
			}
			out[mf.GetName()][key] = m.GetGauge().GetValue()
		}
	}
	return out
}

// TestLagMetrics: a Trigger-like group that committed 2 of 5 records lags
// 3 behind; a group of another tenant is not exported; end offsets count
// every record written to a topic.
func TestLagMetrics(t *testing.T) {
	kc := kafkatest.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(kc.Brokers...), kgo.DefaultProduceTopic(events.TopicSlackRetry),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for i := 0; i < 5; i++ {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("r"), Partition: 0}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: events.TopicDeadLetter, Value: []byte("dl"), Partition: 1}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	commit := func(group string, offset int64) {
		g, err := kgo.NewClient(kgo.SeedBrokers(kc.Brokers...), kgo.ConsumerGroup(group), kgo.ConsumeTopics(events.TopicSlackRetry))
		if err != nil {
			t.Fatal(err)
		}
		defer g.Close()
		var cerr error
		g.CommitOffsetsSync(ctx, map[string]map[int32]kgo.EpochOffset{
			events.TopicSlackRetry: {0: {Epoch: -1, Offset: offset}},
		}, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, _ *kmsg.OffsetCommitResponse, err error) { cerr = err })
		if cerr != nil {
			t.Fatal(cerr)
		}
	}
	commit("coffeebuddy-source.slack-retry", 2)
	commit("someone-else", 0)

	var topics []string
	for _, tp := range events.Topics {
		topics = append(topics, tp.Name)
	}
	got := values(t, kafka.NewLagMetrics(cl, kafka.ConsumerGroups, topics, slog.New(slog.DiscardHandler)))
	lag := got[kafka.ConsumerLagMetric]
	if v, ok := lag["group=coffeebuddy-source.slack-retry,topic=slack.retry,"]; !ok || v != 3 {
		t.Errorf("slack-retry lag = %v (exported %v), want 3; all: %v", v, ok, lag)
	}
	for k := range lag {
		if k == "group=someone-else,topic=slack.retry," {
			t.Errorf("another tenant's group is exported: %v", lag)
		}
	}
	ends := got[kafka.EndOffsetsMetric]
	if ends["topic=slack.retry,"] != 5 || ends["topic=coffee.deadletter,"] != 1 {
		t.Errorf("end offsets = %v, want slack.retry 5 and coffee.deadletter 1", ends)
	}
	if len(ends) != len(events.Topics) {
		t.Errorf("end offsets of %d topics, want every catalog topic (%d)", len(ends), len(events.Topics))
	}
}

// TestConsumerGroupsPattern: the groups of the Kafka Broker's Triggers,
// the KafkaSource and the local stand-in are measured; others are not.
func TestConsumerGroupsPattern(t *testing.T) {
	for g, want := range map[string]bool{
		"knative-trigger-coffeebuddy-slack-retry": true,
		"coffeebuddy-source":                      true,
		"coffeebuddy-source.run-start":            true,
		"knative-trigger-payroll-sync":            false,
		"coffeebuddy-sourcex":                     false,
		"someone-else":                            false,
	} {
		if got := kafka.ConsumerGroups.MatchString(g); got != want {
			t.Errorf("%s: %v, want %v", g, got, want)
		}
	}
}
