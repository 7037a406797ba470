// Package kafkaembed runs an in-process Kafka-protocol cluster (franz-go's
// kfake) for make run, tests and benchmarks. It lives apart from package
// kafka so that no function binary links kfake.
package kafkaembed

import (
	"context"
	"fmt"

	"github.com/coffeebuddy/coffeebuddy/shared/events"
	"github.com/coffeebuddy/coffeebuddy/shared/kafka"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// DefaultPorts are the fixed loopback ports of `make run`'s embedded
// cluster, so outside clients (kcat -b 127.0.0.1:19092) can connect.
var DefaultPorts = []int{19092, 19093, 19094}

// Cluster is an in-process Kafka-protocol cluster (franz-go's kfake) with
// the catalog's topics provisioned.
type Cluster struct {
	cluster *kfake.Cluster
}

// Start starts a three-broker kfake cluster on ports (random ports
// when empty) and provisions topics through the same path as production.
func Start(ctx context.Context, ports []int, topics []events.Topic) (*Cluster, error) {
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
	e := &Cluster{cluster: c}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("kafka: embedded admin client: %w", err)
	}
	defer cl.Close()
	if err := kafka.Provision(ctx, cl, topics); err != nil {
		c.Close()
		return nil, err
	}
	return e, nil
}

// Brokers returns the cluster's listen addresses.
func (e *Cluster) Brokers() []string { return e.cluster.ListenAddrs() }

// Kfake exposes kfake for fault injection in tests.
func (e *Cluster) Kfake() *kfake.Cluster { return e.cluster }

// Close stops the cluster; its data is gone.
func (e *Cluster) Close() { e.cluster.Close() }
