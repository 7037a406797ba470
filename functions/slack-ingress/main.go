// Command slack-ingress is the only synchronous piece: it verifies Slack's
// requests, answers within Slack's 3 seconds, and hands the work to Kafka.
package main

import (
	"net/http"
	"time"

	"github.com/coffeebuddy/coffeebuddy/shared/function"
	"github.com/coffeebuddy/coffeebuddy/shared/slackapi"
)

func main() {
	function.Main(spec(time.Now))
}

// spec is the process; now is the clock of signature checks (timestamp
// window, rotation grace), injected by tests.
func spec(now func() time.Time) function.Spec {
	return function.Spec{
		Name:  "slack-ingress",
		Needs: function.Needs{DB: true, Kafka: true, Slack: true},
		Routes: func(d *function.Deps) (http.Handler, error) {
			v := slackapi.NewVerifier(d.Config.SlackSigningSecret, d.Config.SlackSigningGrace, now, d.Log)
			return New(v, d.Kafka, slackModals{d.Slack}, dbLookups{d.DB}, d.Config.LastCall, d.Log, d.Metrics), nil
		},
	}
}
