// Package kafkaembed runs an in-process Kafka-protocol cluster (franz-go's
// kfake) for make run, tests and benchmarks. It lives apart from package
// kafka so that no function binary links kfake.
package kafkaembed

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"

	"github.com/coffeebuddy/coffeebuddy/shared/events"
	"github.com/coffeebuddy/coffeebuddy/shared/kafka"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// DefaultPorts are the fixed loopback ports of `make run`'s embedded
// cluster, so outside clients (kcat -b 127.0.0.1:19092) can connect.
var DefaultPorts = []int{19092, 19093, 19094}

// numBrokers is the broker count when no ports are given.
const numBrokers = 3

// Options configures an embedded cluster.
type Options struct {
	// Ports are the brokers' loopback ports; empty means three random ports.
	Ports []int
	// DataDir makes the cluster persist its state (topics, records,
	// committed offsets, producer ids) there and reload it on start, so
	// Restart keeps everything, and so does a new cluster started on the
	// same DataDir later (make run with COFFEE_DATA_DIR). Empty means in
	// memory: Restart is refused. The caller owns the directory; Stop and
	// Close leave it in place. One cluster at a time may use it.
	DataDir string
	// Topics are provisioned on the first start (and again, idempotently,
	// after a restart).
	Topics []events.Topic
}

// Cluster is an in-process Kafka-protocol cluster (franz-go's kfake) with
// the catalog's topics provisioned.
type Cluster struct {
	mu      sync.Mutex
	opts    Options // Ports are the actual ports once started
	addrs   []string
	cluster *kfake.Cluster // nil while stopped
	closed  bool
}

// Start starts a three-broker kfake cluster on ports (random ports
// when empty) and provisions topics through the same path as production.
func Start(ctx context.Context, ports []int, topics []events.Topic) (*Cluster, error) {
	return StartWith(ctx, Options{Ports: ports, Topics: topics})
}

// StartWith starts a cluster as o describes and provisions o.Topics.
func StartWith(ctx context.Context, o Options) (*Cluster, error) {
	e := &Cluster{opts: o}
	e.opts.Ports = append([]int(nil), o.Ports...)
	if err := e.start(ctx); err != nil {
		return nil, err
	}
	return e, nil
}

// start runs kfake on e.opts and provisions the topics. Callers hold e.mu
// or own e exclusively.
func (e *Cluster) start(ctx context.Context) error {
	opts := []kfake.Opt{
		kfake.NumBrokers(numBrokers),
		// kfake otherwise runs compaction/retention hourly.
		kfake.BrokerConfigs(map[string]string{"log.cleaner.backoff.ms": "60000"}),
	}
	if len(e.opts.Ports) > 0 {
		opts = append(opts, kfake.Ports(e.opts.Ports...))
	}
	if e.opts.DataDir != "" {
		opts = append(opts, kfake.DataDir(e.opts.DataDir))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return fmt.Errorf("kafka: start embedded cluster: %w", err)
	}
	addrs := c.ListenAddrs()
	// Pin the ports actually bound, so a restart of a random-port cluster
	// comes back where its clients expect it.
	ports := make([]int, len(addrs))
	for i, a := range addrs {
		if ports[i], err = port(a); err != nil {
			c.Close()
			return err
		}
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		c.Close()
		return fmt.Errorf("kafka: embedded admin client: %w", err)
	}
	defer cl.Close()
	if err := kafka.Provision(ctx, cl, e.opts.Topics); err != nil {
		c.Close()
		return err
	}
	e.cluster, e.addrs, e.opts.Ports = c, addrs, ports
	return nil
}

func port(addr string) (int, error) {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, fmt.Errorf("kafka: embedded broker address %q: %w", addr, err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		return 0, fmt.Errorf("kafka: embedded broker address %q: %w", addr, err)
	}
	return n, nil
}

// Brokers returns the cluster's listen addresses; they stay the same
// across Stop and Restart.
func (e *Cluster) Brokers() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.addrs...)
}

// Kfake exposes kfake for fault injection in tests; nil while stopped.
// A restart replaces it, so fetch it again afterwards.
func (e *Cluster) Kfake() *kfake.Cluster {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.cluster
}

// Stop closes the cluster: clients' connections drop and new ones are
// refused. With a DataDir, kfake writes its state there first, so Restart
// brings everything back. Stopping a stopped cluster does nothing.
func (e *Cluster) Stop() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.stop()
}

func (e *Cluster) stop() {
	if e.cluster != nil {
		e.cluster.Close()
		e.cluster = nil
	}
}

// ErrNoDataDir is returned by Restart for an in-memory cluster, whose data
// a restart would lose.
var ErrNoDataDir = errors.New("kafka: embedded cluster has no DataDir to restart from")

// Restart stops the cluster (if running) and starts it again on the same
// ports from its DataDir.
func (e *Cluster) Restart(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.opts.DataDir == "" {
		return ErrNoDataDir
	}
	if e.closed {
		return errors.New("kafka: embedded cluster is closed")
	}
	e.stop()
	if err := e.start(ctx); err != nil {
		return fmt.Errorf("kafka: restart embedded cluster: %w", err)
	}
	return nil
}

// Close stops the cluster for good: Restart fails afterwards. For callers
// its data is gone (a DataDir is left on disk for its owner to remove).
func (e *Cluster) Close() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.closed = true
	e.stop()
}
