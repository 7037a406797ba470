// Command outbox-sweep handles the PingSource tick: it publishes outbox rows
// that a crash left unpublished.
package main

import (
	"github.com/coffeebuddy/coffeebuddy/shared/function"
	"github.com/coffeebuddy/coffeebuddy/shared/outbox"
)

func main() {
	function.Main(function.Spec{
		Name:  "outbox-sweep",
		Needs: function.Needs{DB: true, Kafka: true},
		Events: func(d *function.Deps) (function.Handler, error) {
			return New(outbox.NewRelay(d.DB, d.Kafka, d.Log)), nil
		},
	})
}
