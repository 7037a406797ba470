// Command order-usual handles com.coffeebuddy.order.usual_requested (the
// My usual button): it orders the user's favourite drink+size in the run and
// emits com.coffeebuddy.order.placed.
package main

import (
	"time"

	"github.com/coffeebuddy/coffeebuddy/shared/function"
	"github.com/coffeebuddy/coffeebuddy/shared/outbox"
	"github.com/coffeebuddy/coffeebuddy/shared/store"
)

func main() {
	function.Main(function.Spec{
		Name:  "order-usual",
		Needs: function.Needs{DB: true, Kafka: true, Slack: true},
		Events: func(d *function.Deps) (function.Handler, error) {
			return New(store.New(d.DB), outbox.NewRelay(d.DB, d.Kafka, d.Log), d.Slack, time.Now), nil
		},
	})
}
