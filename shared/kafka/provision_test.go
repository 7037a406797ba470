package kafka_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/coffeebuddy/coffeebuddy/shared/events"
	"github.com/coffeebuddy/coffeebuddy/shared/kafka"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// newCluster starts an empty kfake cluster (no topics) and a client for it.
func newCluster(t *testing.T, brokers int) *kgo.Client {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(brokers))
	if err != nil {
		t.Fatalf("kfake: %v", err)
	}
	t.Cleanup(c.Close)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func TestProvision(t *testing.T) {
	for _, brokers := range []int{3, 1} {
		t.Run(fmt.Sprintf("%d brokers", brokers), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cl := newCluster(t, brokers)

			// Idempotent: the second run finds every topic and is fine.
			for i := range 2 {
				if err := kafka.Provision(ctx, cl, events.Topics); err != nil {
					t.Fatalf("Provision #%d: %v", i+1, err)
				}
			}

			adm := kadm.NewClient(cl)
			names := make([]string, len(events.Topics))
			for i, tp := range events.Topics {
				names[i] = tp.Name
			}
			details, err := adm.ListTopics(ctx, names...)
			if err != nil {
				t.Fatalf("ListTopics: %v", err)
			}
			configs, err := adm.DescribeTopicConfigs(ctx, names...)
			if err != nil {
				t.Fatalf("DescribeTopicConfigs: %v", err)
			}
			for _, tp := range events.Topics {
				d, ok := details[tp.Name]
				if !ok || d.Err != nil {
					t.Errorf("topic %s missing (err %v)", tp.Name, d.Err)
					continue
				}
				if got := len(d.Partitions); got != 3 {
					t.Errorf("%s: %d partitions, want 3", tp.Name, got)
				}
				wantRF := min(int(tp.ReplicationFactor), brokers)
				for _, p := range d.Partitions {
					if len(p.Replicas) != wantRF {
						t.Errorf("%s/%d: %d replicas, want %d", tp.Name, p.Partition, len(p.Replicas), wantRF)
					}
				}

				rc, err := configs.On(tp.Name, nil)
				if err != nil || rc.Err != nil {
					t.Errorf("%s: configs: %v %v", tp.Name, err, rc.Err)
					continue
				}
				wantPolicy := "delete"
				if tp.Name == events.TopicAssignments {
					wantPolicy = "compact"
				}
				wantRetention := "604800000" // 7 days
				if tp.Name == events.TopicTimers {
					wantRetention = "86400000" // 1 day
				}
				want := map[string]string{
					"cleanup.policy": wantPolicy,
					"retention.ms":   wantRetention,
				}
				for _, c := range rc.Configs {
					if w, ok := want[c.Key]; ok {
						if c.Value == nil || *c.Value != w {
							t.Errorf("%s: %s = %v, want %s", tp.Name, c.Key, c.MaybeValue(), w)
						}
						delete(want, c.Key)
					}
				}
				for k := range want {
					t.Errorf("%s: config %s not described", tp.Name, k)
				}
			}
		})
	}
}

func TestProvisionLeavesExistingTopics(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl := newCluster(t, 3)
	adm := kadm.NewClient(cl)
	// An operator created coffee.orders by hand with other settings.
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, events.TopicOrders); err != nil {
		t.Fatal(err)
	}
	if err := kafka.Provision(ctx, cl, events.Topics); err != nil {
		t.Fatalf("Provision: %v", err)
	}
	details, err := adm.ListTopics(ctx, events.TopicOrders, events.TopicSlackEvents)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(details[events.TopicOrders].Partitions); n != 1 {
		t.Errorf("existing %s now has %d partitions, want it left alone (1)", events.TopicOrders, n)
	}
	if n := len(details[events.TopicSlackEvents].Partitions); n != 3 {
		t.Errorf("%s has %d partitions, want 3", events.TopicSlackEvents, n)
	}
}

func TestProvisionReportsErrors(t *testing.T) {
	cl := newCluster(t, 1)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := kafka.Provision(ctx, cl, events.Topics); err == nil {
		t.Error("Provision with a cancelled context succeeded")
	}
	ctx, cancel = context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	bad := []events.Topic{{Name: "bad", Partitions: 0, ReplicationFactor: 1, Retention: time.Hour}}
	if err := kafka.Provision(ctx, cl, bad); err == nil {
		t.Error("Provision of a topic with 0 partitions succeeded")
	}
}
