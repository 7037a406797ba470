// Command volunteer-notify handles com.coffeebuddy.run.volunteer_set: the
// run message shows the volunteer and the thread says who is going.
package main

import (
	"github.com/coffeebuddy/coffeebuddy/shared/function"
	"github.com/coffeebuddy/coffeebuddy/shared/store"
)

func main() {
	function.Main(function.Spec{
		Name:  "volunteer-notify",
		Needs: function.Needs{DB: true, Slack: true},
		Events: func(d *function.Deps) (function.Handler, error) {
			return New(store.New(d.DB), d.Slack), nil
		},
	})
}
