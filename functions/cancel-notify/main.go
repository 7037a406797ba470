// Command cancel-notify handles com.coffeebuddy.run.cancelled: it updates
// the run message and tells every orderer in the run's thread.
package main

import (
	"github.com/coffeebuddy/coffeebuddy/shared/function"
	"github.com/coffeebuddy/coffeebuddy/shared/store"
)

func main() {
	function.Main(function.Spec{
		Name:  "cancel-notify",
		Needs: function.Needs{DB: true, Slack: true},
		Events: func(d *function.Deps) (function.Handler, error) {
			return New(store.New(d.DB), d.Slack), nil
		},
	})
}
