// Command run-start handles com.coffeebuddy.command.coffee: it starts the
// channel's coffee run, or tells the caller about the active one.
package main

import (
	"time"

	"github.com/coffeebuddy/coffeebuddy/shared/function"
	"github.com/coffeebuddy/coffeebuddy/shared/outbox"
	"github.com/coffeebuddy/coffeebuddy/shared/store"
)

func main() {
	function.Main(function.Spec{
		Name:  "run-start",
		Needs: function.Needs{DB: true, Kafka: true, Slack: true},
		Events: func(d *function.Deps) (function.Handler, error) {
			return New(store.New(d.DB), outbox.NewRelay(d.DB, d.Kafka, d.Log), d.Slack, d.Config.LastCall, time.Now), nil
		},
	})
}
