// Command slack-retry takes the Slack calls that Slack rate limited
// (com.coffeebuddy.slack.retry, buffered in slack.retry by the function
// runtime), waits until their not-before time and re-produces the original
// event, with its attempt count, to its catalog topic, so the function that
// was rate limited gets it again.
package main

import (
	"github.com/coffeebuddy/coffeebuddy/shared/function"
)

func main() { function.Main(spec) }

var spec = function.Spec{
	Name:  "slack-retry",
	Needs: function.Needs{Kafka: true},
	Events: func(d *function.Deps) (function.Handler, error) {
		return New(d.Kafka), nil
	},
}
