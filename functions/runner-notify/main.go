// Command runner-notify handles com.coffeebuddy.run.closed: the thread
// says who goes and why (or that nobody ordered), and the runner gets a DM
// with every order, the totals and a *Mark complete* button.
package main

import (
	"time"

	"github.com/coffeebuddy/coffeebuddy/shared/function"
	"github.com/coffeebuddy/coffeebuddy/shared/outbox"
	"github.com/coffeebuddy/coffeebuddy/shared/store"
)

func main() {
	function.Main(function.Spec{
		Name:  "runner-notify",
		Needs: function.Needs{DB: true, Slack: true},
		Events: func(d *function.Deps) (function.Handler, error) {
			return New(store.New(d.DB), d.Slack, outbox.NewRelay(d.DB, d.Kafka, d.Log), time.Now), nil
		},
	})
}
