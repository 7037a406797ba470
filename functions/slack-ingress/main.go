// Command slack-ingress is the only synchronous piece: it verifies Slack's
// requests, answers within Slack's 3 seconds, and hands the work to Kafka.
package main

import (
	"fmt"
	"net/http"
	"os"
	"strconv"
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
			limit, err := userLimit(os.Getenv)
			if err != nil {
				return nil, err
			}
			v := slackapi.NewVerifier(d.Config.SlackSigningSecret, d.Config.SlackSigningGrace, now, d.Log)
			return New(v, d.Kafka, slackModals{d.Slack}, dbLookups{d.DB}, d.Config.LastCall, d.Log, d.Metrics,
				WithUserLimit(limit)), nil
		},
	}
}

// userLimit reads SLACK_USER_RATE_LIMIT: requests per Slack user per minute,
// DefaultUserLimit when unset, 0 for no limit.
func userLimit(getenv func(string) string) (int, error) {
	v := getenv("SLACK_USER_RATE_LIMIT")
	if v == "" {
		return DefaultUserLimit, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("SLACK_USER_RATE_LIMIT=%q: want a whole number of requests per minute (0: no limit)", v)
	}
	return n, nil
}
