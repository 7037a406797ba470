package kafka

import (
	"context"
	"errors"
	"fmt"

	"github.com/coffeebuddy/coffeebuddy/shared/events"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Provision creates every topic in topics that does not exist yet; existing
// topics are left as they are, so running it twice is harmless. The
// replication factor is capped at the number of brokers, so a one-broker
// development cluster still gets every topic.
func Provision(ctx context.Context, cl *kgo.Client, topics []events.Topic) error {
	adm := kadm.NewClient(cl)
	meta, err := adm.BrokerMetadata(ctx)
	if err != nil {
		return fmt.Errorf("kafka: provision: metadata: %w", err)
	}
	brokers := int16(len(meta.Brokers))
	for _, t := range topics {
		rf := min(t.ReplicationFactor, brokers)
		res, err := adm.CreateTopic(ctx, t.Partitions, rf, t.Configs(), t.Name)
		if err == nil {
			err = res.Err
		}
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("kafka: provision %s: %w", t.Name, err)
		}
	}
	return nil
}
