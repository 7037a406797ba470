// Command runner-remind handles com.coffeebuddy.run.reminder_due: the
// runner of a run still not marked complete gets a reminder DM.
package main

import (
	"time"

	"github.com/coffeebuddy/coffeebuddy/shared/function"
	"github.com/coffeebuddy/coffeebuddy/shared/store"
)

func main() {
	function.Main(function.Spec{
		Name:  "runner-remind",
		Needs: function.Needs{DB: true, Slack: true},
		Events: func(d *function.Deps) (function.Handler, error) {
			return New(store.New(d.DB), d.Slack, time.Now), nil
		},
	})
}
