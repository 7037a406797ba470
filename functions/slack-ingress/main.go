// Command slack-ingress is the only synchronous piece: it verifies Slack's
// requests, answers within Slack's 3 seconds, and hands the work to Kafka.
package main

import (
	"net/http"

	"github.com/coffeebuddy/coffeebuddy/shared/function"
)

func main() {
	function.Main(function.Spec{
		Name:  "slack-ingress",
		Needs: function.Needs{DB: true, Kafka: true, Slack: true},
		Routes: func(d *function.Deps) (http.Handler, error) {
			return New(d.Config.SlackSigningSecret, d.Kafka, slackModals{d.Slack}, dbLookups{d.DB}, d.Config.LastCall, d.Log, d.Metrics), nil
		},
	})
}
