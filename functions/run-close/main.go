// Command run-close handles com.coffeebuddy.run.close_requested: the
// initiator's *Close now* closes the run and assigns its runner.
package main

import (
	"time"

	"github.com/coffeebuddy/coffeebuddy/shared/closing"
	"github.com/coffeebuddy/coffeebuddy/shared/function"
	"github.com/coffeebuddy/coffeebuddy/shared/outbox"
	"github.com/coffeebuddy/coffeebuddy/shared/store"
)

func main() {
	function.Main(function.Spec{
		Name:  "run-close",
		Needs: function.Needs{DB: true, Kafka: true, Slack: true},
		Events: func(d *function.Deps) (function.Handler, error) {
			s := store.New(d.DB)
			closer := closing.New(s, outbox.NewRelay(d.DB, d.Kafka, d.Log), source, d.Metrics)
			return New(s, closer, d.Slack, time.Now), nil
		},
	})
}
