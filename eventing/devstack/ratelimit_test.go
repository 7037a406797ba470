package devstack_test

import (
	"context"
	"testing"
	"time"

	"github.com/coffeebuddy/coffeebuddy/eventing/devstack"
	"github.com/coffeebuddy/coffeebuddy/shared/events"
	"github.com/coffeebuddy/coffeebuddy/shared/kafka"
	"github.com/coffeebuddy/coffeebuddy/shared/slackstandin"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestRateLimitedRunMessage: Slack rate limits the first three
// chat.postMessage calls (Retry-After 1 s). run-announce's run message is
// buffered in slack.retry three times, re-delivered by slack-retry, and
// posted exactly once.
func TestRateLimitedRunMessage(t *testing.T) {
	s := startStack(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s.Slack.SetFault("chat.postMessage", slackstandin.FailN(3, 429, time.Second))
	p := devstack.NewPlayer(s, "C0LIMITED")

	_, err := p.Command(ctx, alice, "/coffee", "10")
	must(t, err)
	_, _, err = p.RunMessage(ctx)
	must(t, err)

	top := 0
	for _, m := range s.Slack.Messages("C0LIMITED") {
		if m.ThreadTS == "" {
			top++
		}
	}
	if top != 1 {
		t.Errorf("%d top-level messages, want the run message exactly once", top)
	}
	if n := len(s.Slack.Calls("chat.postMessage")); n < 4 {
		t.Errorf("%d chat.postMessage calls, want at least 4 (3 rate limited, then the post)", n)
	}

	// slack.retry carried the three retries, attempts 1, 2, 3.
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.Brokers...), kgo.ConsumeTopics(events.TopicSlackRetry),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	must(t, err)
	defer cl.Close()
	attempts := map[int]bool{}
	for len(attempts) < 3 && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			e, err := kafka.Event(r)
			if err != nil {
				t.Errorf("slack.retry record is not a CloudEvent: %v", err)
				return
			}
			var sr events.SlackRetry
			if err := e.DataAs(&sr); err != nil {
				t.Errorf("slack.retry payload: %v", err)
				return
			}
			if sr.Function != "run-announce" || sr.Method != "chat.postMessage" {
				t.Errorf("retry from %s for %s, want run-announce, chat.postMessage", sr.Function, sr.Method)
			}
			attempts[sr.Attempt] = true
		})
	}
	for a := 1; a <= 3; a++ {
		if !attempts[a] {
			t.Errorf("no retry with attempt %d in slack.retry (saw %v)", a, attempts)
		}
	}
}
