// Command housekeeping handles the housekeeping-tick PingSource: once a day
// it deletes expired rows from the bookkeeping tables (processed_events,
// published outbox rows, posted slack_posts) so they stay bounded.
package main

import (
	"time"

	"github.com/coffeebuddy/coffeebuddy/shared/function"
	"github.com/coffeebuddy/coffeebuddy/shared/store"
)

func main() {
	function.Main(function.Spec{
		Name:  "housekeeping",
		Needs: function.Needs{DB: true},
		Events: func(d *function.Deps) (function.Handler, error) {
			return New(store.New(d.DB), time.Now, DefaultBatch), nil
		},
	})
}
