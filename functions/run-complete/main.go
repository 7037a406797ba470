// Command run-complete handles com.coffeebuddy.run.complete_requested: the
// runner's *Mark complete* (in their DM) completes the run.
package main

import (
	"time"

	"github.com/coffeebuddy/coffeebuddy/shared/function"
	"github.com/coffeebuddy/coffeebuddy/shared/outbox"
	"github.com/coffeebuddy/coffeebuddy/shared/store"
)

func main() {
	function.Main(function.Spec{
		Name:  "run-complete",
		Needs: function.Needs{DB: true, Kafka: true, Slack: true},
		Events: func(d *function.Deps) (function.Handler, error) {
			return New(store.New(d.DB), outbox.NewRelay(d.DB, d.Kafka, d.Log), d.Slack, time.Now), nil
		},
	})
}
