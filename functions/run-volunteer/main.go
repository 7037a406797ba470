// Command run-volunteer handles com.coffeebuddy.run.volunteer_requested:
// *I'll go* makes the clicker the run's volunteer (first one wins).
package main

import (
	"github.com/coffeebuddy/coffeebuddy/shared/function"
	"github.com/coffeebuddy/coffeebuddy/shared/outbox"
	"github.com/coffeebuddy/coffeebuddy/shared/store"
)

func main() {
	function.Main(function.Spec{
		Name:  "run-volunteer",
		Needs: function.Needs{DB: true, Kafka: true, Slack: true},
		Events: func(d *function.Deps) (function.Handler, error) {
			return New(store.New(d.DB), outbox.NewRelay(d.DB, d.Kafka, d.Log), d.Slack), nil
		},
	})
}
