// Command run-cancel handles com.coffeebuddy.command.cancel (/coffee-cancel
// [reason]): it cancels the channel's run for its initiator or runner, or
// tells the caller why not.
package main

import (
	"time"

	"github.com/coffeebuddy/coffeebuddy/shared/function"
	"github.com/coffeebuddy/coffeebuddy/shared/outbox"
	"github.com/coffeebuddy/coffeebuddy/shared/store"
)

func main() {
	function.Main(function.Spec{
		Name:  "run-cancel",
		Needs: function.Needs{DB: true, Kafka: true, Slack: true},
		Events: func(d *function.Deps) (function.Handler, error) {
			return New(store.New(d.DB), outbox.NewRelay(d.DB, d.Kafka, d.Log), d.Slack, time.Now), nil
		},
	})
}
