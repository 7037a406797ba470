package slackapi_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/coffeebuddy/coffeebuddy/shared/config"
	"github.com/coffeebuddy/coffeebuddy/shared/slackapi"
	"github.com/coffeebuddy/coffeebuddy/shared/slackstandin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/slack-go/slack"
)

// TestRateLimitedCounted: every 429 from Slack counts in
// slack_api_rate_limited_total{method}, and a context's note learns the
// method; successful calls count nothing.
func TestRateLimitedCounted(t *testing.T) {
	srv := slackstandin.NewTestServer(t, slackstandin.Options{})
	reg := prometheus.NewRegistry()
	clients := slackapi.NewClients(config.StaticSecret("SLACK_BOT_TOKEN", slackstandin.DefaultBotToken), srv.APIURL(),
		slackapi.WithMetrics(reg))
	cli, err := clients.Get()
	if err != nil {
		t.Fatal(err)
	}
	srv.SetFault("chat.postMessage", slackstandin.FailN(2, 429, 3*time.Second))

	ctx, note := slackapi.WithRateLimitNote(context.Background())
	for i := range 2 {
		_, _, err := cli.PostMessageContext(ctx, slackstandin.DefaultChannelID, slack.MsgOptionText("hi", false))
		var rl *slack.RateLimitedError
		if !errors.As(err, &rl) || rl.RetryAfter != 3*time.Second {
			t.Fatalf("call %d: %v, want RateLimitedError with 3s", i, err)
		}
	}
	if got := note.Method(); got != "chat.postMessage" {
		t.Errorf("note.Method() = %q, want chat.postMessage", got)
	}
	if _, _, err := cli.PostMessageContext(context.Background(), slackstandin.DefaultChannelID, slack.MsgOptionText("hi", false)); err != nil {
		t.Fatalf("third call: %v", err)
	}
	if _, _, _, err := cli.OpenConversationContext(ctx, &slack.OpenConversationParameters{Users: []string{"U1"}}); err != nil {
		t.Fatalf("conversations.open: %v", err)
	}

	// A second NewClients on the same registry shares the counter.
	slackapi.NewClients(config.StaticSecret("SLACK_BOT_TOKEN", slackstandin.DefaultBotToken), srv.APIURL(), slackapi.WithMetrics(reg))

	n, err := testutil.GatherAndCount(reg, slackapi.RateLimitedMetric)
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("%d series of %s, want 1 (chat.postMessage only)", n, slackapi.RateLimitedMetric)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != slackapi.RateLimitedMetric {
			continue
		}
		m := mf.GetMetric()[0]
		if l := m.GetLabel(); len(l) != 1 || l[0].GetName() != "method" || l[0].GetValue() != "chat.postMessage" {
			t.Errorf("labels = %v, want method=chat.postMessage", l)
		}
		if v := m.GetCounter().GetValue(); v != 2 {
			t.Errorf("%s{method=chat.postMessage} = %v, want 2", slackapi.RateLimitedMetric, v)
		}
	}
}
