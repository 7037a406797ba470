// Command prefs-purge handles the prefs-purge-tick PingSource: once a day it
// deletes user preferences nobody has ordered for 90 days.
package main

import (
	"time"

	"github.com/coffeebuddy/coffeebuddy/shared/function"
	"github.com/coffeebuddy/coffeebuddy/shared/store"
)

func main() {
	function.Main(function.Spec{
		Name:  "prefs-purge",
		Needs: function.Needs{DB: true},
		Events: func(d *function.Deps) (function.Handler, error) {
			return New(store.New(d.DB), time.Now), nil
		},
	})
}
