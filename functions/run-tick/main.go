// Command run-tick handles the run-tick PingSource (every minute): it warns
// runs nearing last call, closes runs past it and reminds runners, all from
// the database, so timers survive restarts and scale-to-zero.
package main

import (
	"time"

	"github.com/coffeebuddy/coffeebuddy/shared/function"
	"github.com/coffeebuddy/coffeebuddy/shared/outbox"
	"github.com/coffeebuddy/coffeebuddy/shared/store"
)

func main() {
	function.Main(function.Spec{
		Name:  "run-tick",
		Needs: function.Needs{DB: true, Kafka: true},
		Events: func(d *function.Deps) (function.Handler, error) {
			// Runs stuck past last call, for the alert of that name.
			if err := d.Metrics.Register(NewOverdueMetrics(d.DB, time.Now, d.Log)); err != nil {
				return nil, err
			}
			return New(store.New(d.DB), outbox.NewRelay(d.DB, d.Kafka, d.Log), d.Metrics,
				Timing{WarnBefore: d.Config.WarnBefore, RemindAfter: d.Config.RemindAfter}, time.Now), nil
		},
	})
}
