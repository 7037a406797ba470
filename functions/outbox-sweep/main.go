// Command outbox-sweep handles the PingSource tick: it publishes outbox rows
// that a crash left unpublished. It also exports, read at scrape time, the
// outbox backlog and the lag of the Triggers' consumer groups
// (docs/metrics.md): it already holds the database and a Kafka client, and
// one exporter per system is enough.
package main

import (
	"github.com/coffeebuddy/coffeebuddy/shared/events"
	"github.com/coffeebuddy/coffeebuddy/shared/function"
	"github.com/coffeebuddy/coffeebuddy/shared/kafka"
	"github.com/coffeebuddy/coffeebuddy/shared/outbox"
)

func main() {
	function.Main(function.Spec{
		Name:  "outbox-sweep",
		Needs: function.Needs{DB: true, Kafka: true},
		Events: func(d *function.Deps) (function.Handler, error) {
			var topics []string
			for _, t := range events.Topics {
				topics = append(topics, t.Name)
			}
			if err := d.Metrics.Register(outbox.NewMetrics(d.DB, d.Log)); err != nil {
				return nil, err
			}
			if err := d.Metrics.Register(kafka.NewLagMetrics(d.Kafka, kafka.ConsumerGroups, topics, d.Log)); err != nil {
				return nil, err
			}
			return New(outbox.NewRelay(d.DB, d.Kafka, d.Log)), nil
		},
	})
}
