// Command completion-notify handles com.coffeebuddy.run.completed: the run
// message shows the delivery and the thread tags everyone who ordered.
package main

import (
	"github.com/coffeebuddy/coffeebuddy/shared/function"
	"github.com/coffeebuddy/coffeebuddy/shared/store"
)

func main() {
	function.Main(function.Spec{
		Name:  "completion-notify",
		Needs: function.Needs{DB: true, Slack: true},
		Events: func(d *function.Deps) (function.Handler, error) {
			return New(store.New(d.DB), d.Slack), nil
		},
	})
}
