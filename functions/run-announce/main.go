// Command run-announce handles com.coffeebuddy.run.created: it posts the
// run message in the channel.
package main

import (
	"github.com/coffeebuddy/coffeebuddy/shared/function"
	"github.com/coffeebuddy/coffeebuddy/shared/store"
)

func main() {
	function.Main(function.Spec{
		Name:  "run-announce",
		Needs: function.Needs{DB: true, Slack: true},
		Events: func(d *function.Deps) (function.Handler, error) {
			return New(store.New(d.DB), d.Slack), nil
		},
	})
}
