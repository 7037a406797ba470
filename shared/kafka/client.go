// Package kafka holds CoffeeBuddy's franz-go plumbing: the producer every
// function uses, the CloudEvents binary-mode adapter, topic provisioning from
// the events catalog, and the embedded kfake cluster for one-machine runs.
package kafka

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kprom"
	"github.com/twmb/franz-go/plugin/kslog"
)

// Brokers splits a comma-separated KAFKA_BROKERS value.
func Brokers(s string) []string {
	var out []string
	for _, b := range strings.Split(s, ",") {
		if b = strings.TrimSpace(b); b != "" {
			out = append(out, b)
		}
	}
	return out
}

// NewClient returns a franz-go client for brokers that produces idempotently
// with acks=all (franz-go's defaults, stated here so nobody loosens them by
// accident), logs through log, and exports metrics to reg when non-nil.
// Extra options (consumer groups, topics) are appended.
func NewClient(brokers []string, log *slog.Logger, reg *prometheus.Registry, extra ...kgo.Opt) (*kgo.Client, error) {
	if len(brokers) == 0 {
		return nil, fmt.Errorf("kafka: no brokers")
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(brokers...),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.WithLogger(kslog.New(log)),
		// Keep records of one key on one partition across producers in
		// any language: Kafka's Java default partitioner (murmur2).
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)),
	}
	if reg != nil {
		opts = append(opts, kgo.WithHooks(kprom.NewMetrics("kafka", kprom.Registry(reg))))
	}
	opts = append(opts, extra...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka: new client: %w", err)
	}
	return cl, nil
}

// Ping checks that at least one broker answers, for readiness probes.
func Ping(ctx context.Context, cl *kgo.Client) error {
	if err := cl.Ping(ctx); err != nil {
		return fmt.Errorf("kafka: ping: %w", err)
	}
	return nil
}
