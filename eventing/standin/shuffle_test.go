package standin_test

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/coffeebuddy/coffeebuddy/eventing/standin"
	"github.com/coffeebuddy/coffeebuddy/shared/events"
	"github.com/coffeebuddy/coffeebuddy/shared/kafka"
)

// TestShuffle: with SetShuffle on, an unordered Trigger's concurrent
// deliveries of one partition reach the subscriber out of offset order, each
// once, and everything is committed; an ordered Trigger keeps offset order.
func TestShuffle(t *testing.T) {
	for _, order := range []standin.DeliveryOrder{standin.Unordered, standin.Ordered} {
		t.Run(string(order), func(t *testing.T) {
			files := baseManifests()
			files["t.yaml"] = withDeliveryOrder(trigger("shuf", "shuf", nil, "retry: 2\nbackoffPolicy: linear\nbackoffDelay: PT0.01S"), order)
			e := newEnv(t, files)
			sub := newGated(t, func(int, int) verdict { return pass })
			cfg := e.config()
			cfg.Resolve = func(string, string) (string, error) { return sub.srv.URL + "/", nil }
			si, _ := e.startWith(cfg, func(si *standin.StandIn) { si.SetShuffle(40 * time.Millisecond) })

			const n = 40
			offsets := map[int]int64{}
			part := e.produceSeq("one-partition", 0, n, offsets)
			waitUntil(t, "every event answered", func() bool {
				return sub.read(func(g *gated) bool { return len(g.ok) == n })
			})
			group := "src.shuf"
			waitUntil(t, "everything committed", func() bool { return e.committed(group, "coffee.orders", part) == offsets[n-1]+1 })
			sub.read(func(g *gated) bool {
				if len(g.arrivals) != n {
					t.Errorf("%d requests for %d events", len(g.arrivals), n)
				}
				sorted := slices.IsSorted(g.arrivals)
				switch {
				case order == standin.Ordered && !sorted:
					t.Errorf("ordered delivery shuffled: %v", g.arrivals)
				case order == standin.Unordered && sorted:
					// 40 concurrent deliveries with independent random delays
					// arrive sorted with a probability far below 1e-40.
					t.Errorf("unordered deliveries arrived in offset order despite the shuffle: %v", g.arrivals)
				}
				return true
			})
			if order == standin.Unordered && si.Shuffled() < n {
				t.Errorf("%d deliveries delayed, want at least %d", si.Shuffled(), n)
			}
		})
	}
}

// TestPartitionKeyReachesTheSubscriber: the partitionkey extension a
// producer sets (the Kafka record key) arrives with the event, for ordered
// and unordered Triggers alike: it is what Knative's Kafka Broker keys its
// own topic by, so one run's events keep their partition end to end.
func TestPartitionKeyReachesTheSubscriber(t *testing.T) {
	for _, order := range []standin.DeliveryOrder{standin.Ordered, standin.Unordered} {
		t.Run(string(order), func(t *testing.T) {
			files := baseManifests()
			files["t.yaml"] = withDeliveryOrder(trigger("pk", "pk", nil, "retry: 1"), order)
			e := newEnv(t, files)
			got := make(chan string, 1)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				select {
				case got <- r.Header.Get("Ce-Partitionkey"):
				default:
				}
			}))
			t.Cleanup(srv.Close)
			cfg := e.config()
			cfg.Resolve = func(string, string) (string, error) { return srv.URL + "/", nil }
			e.start(cfg)
			ev := newEvent("test.pk", map[string]int{"i": 1})
			ev.SetExtension(kafka.ExtPartitionKey, "run-42")
			e.produce(events.TopicOrders, "run-42", ev)
			select {
			case pk := <-got:
				if pk != "run-42" {
					t.Fatalf("ce-partitionkey = %q, want run-42", pk)
				}
			case <-time.After(wait):
				t.Fatal("nothing delivered")
			}
		})
	}
}
