// Command quarantine takes the Kafka records that are not CloudEvents (the
// KafkaSource hands them over as dev.knative.kafka.event, which no other
// Trigger takes) and parks them on the dead-letter topic with their original
// bytes, key, headers and the reason, so the consumer moves on and nothing
// is silently dropped. `eventing/cmd/deadletters` lists, inspects and
// replays them.
package main

import (
	"github.com/coffeebuddy/coffeebuddy/shared/events"
	"github.com/coffeebuddy/coffeebuddy/shared/function"
)

func main() { function.Main(spec) }

var spec = function.Spec{
	Name:  "quarantine",
	Needs: function.Needs{Kafka: true},
	Events: func(d *function.Deps) (function.Handler, error) {
		return New(d.Kafka, events.TopicDeadLetter, d.Metrics), nil
	},
}
