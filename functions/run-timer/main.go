// Command run-timer handles com.coffeebuddy.run.timer: it holds each of a
// run's moments (the last-call warning, last call, the runner's reminder)
// until it falls, then handles it, so they happen within a second of the
// time announced rather than at run-tick's next minute.
package main

import (
	"time"

	"github.com/coffeebuddy/coffeebuddy/shared/function"
	"github.com/coffeebuddy/coffeebuddy/shared/outbox"
	"github.com/coffeebuddy/coffeebuddy/shared/store"
	"github.com/coffeebuddy/coffeebuddy/shared/timers"
)

func main() {
	function.Main(function.Spec{
		Name:  "run-timer",
		Needs: function.Needs{DB: true, Kafka: true},
		Events: func(d *function.Deps) (function.Handler, error) {
			t := timers.New(store.New(d.DB), outbox.NewRelay(d.DB, d.Kafka, d.Log), d.Metrics,
				timers.Timing{WarnBefore: d.Config.WarnBefore, RemindAfter: d.Config.RemindAfter}, "run-timer")
			return New(store.New(d.DB), t, d.Kafka, d.Stopping, time.Now), nil
		},
	})
}
