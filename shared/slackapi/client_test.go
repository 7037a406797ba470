package slackapi_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/coffeebuddy/coffeebuddy/shared/blocks"
	"github.com/coffeebuddy/coffeebuddy/shared/config"
	"github.com/coffeebuddy/coffeebuddy/shared/slackapi"
	"github.com/coffeebuddy/coffeebuddy/shared/slackstandin"
	"github.com/slack-go/slack"
)

func TestOpenView(t *testing.T) {
	srv := slackstandin.NewTestServer(t, slackstandin.Options{})
	view := blocks.OrderModal(blocks.OrderMetadata{TeamID: "T1", ChannelID: "C1"}, blocks.Prefill{Drink: "mocha", Size: "small"})
	ctx := context.Background()

	good := slackapi.NewClients(config.StaticSecret("SLACK_BOT_TOKEN", slackstandin.DefaultBotToken), srv.APIURL())
	if err := good.OpenView(ctx, "trigger-1", view); err != nil {
		t.Fatalf("OpenView: %v", err)
	}
	calls := srv.Calls("views.open")
	if len(calls) != 1 || calls[0].Params["trigger_id"] != "trigger-1" || !strings.Contains(calls[0].Params["view"], `"callback_id":"order_submit"`) {
		t.Fatalf("views.open calls: %+v", calls)
	}

	bad := slackapi.NewClients(config.StaticSecret("SLACK_BOT_TOKEN", "xoxb-wrong"), srv.APIURL())
	if err := bad.OpenView(ctx, "trigger-2", view); err == nil || !strings.Contains(err.Error(), "invalid_auth") {
		t.Fatalf("wrong token: %v, want invalid_auth", err)
	}

	srv.SetFault("views.open", slackstandin.FailN(1, 429, 7*time.Second))
	var rl *slack.RateLimitedError
	if err := good.OpenView(ctx, "trigger-3", view); !errors.As(err, &rl) || rl.RetryAfter != 7*time.Second {
		t.Fatalf("rate limited: %v, want RateLimitedError with 7s", err)
	}
}
