package kafka

import (
	"context"
	"fmt"

	"github.com/coffeebuddy/coffeebuddy/shared/events"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// DefaultEmbeddedPorts are the fixed loopback ports of `make run`'s embedded
// cluster, so outside clients (kcat -b 127.0.0.1:19092) can connect.
var DefaultEmbeddedPorts = []int{19092, 19093, 19094}

// Embedded is an in-process Kafka-protocol cluster (franz-go's kfake) with
// the catalog's topics provisioned.
type Embedded struct {
	cluster *kfake.Cluster
}

// StartEmbedded starts a three-broker kfake cluster on ports (random ports
// when empty) and provisions topics through the same path as production.
func StartEmbedded(ctx context.Context, ports []int, topics []events.Topic) (*Embedded, error) {
	opts := []kfake.Opt{
		kfake.NumBrokers(3),
		// kfake otherwise runs compaction/retention hourly.
		kfake.BrokerConfigs(map[string]string{"log.cleaner.backoff.ms": "60000"}),
	}
	if len(ports) > 0 {
		opts = append(opts, kfake.Ports(ports...))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka: start embedded cluster: %w", err)
	}
	e := &Embedded{cluster: c}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("kafka: embedded admin client: %w", err)
	}
	defer cl.Close()
	if err := Provision(ctx, cl, topics); err != nil {
		c.Close()
		return nil, err
	}
	return e, nil
}

// Brokers returns the cluster's listen addresses.
func (e *Embedded) Brokers() []string { return e.cluster.ListenAddrs() }

// Cluster exposes kfake for fault injection in tests.
func (e *Embedded) Cluster() *kfake.Cluster { return e.cluster }

// Close stops the cluster; its data is gone.
func (e *Embedded) Close() { e.cluster.Close() }
