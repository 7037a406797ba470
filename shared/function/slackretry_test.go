package function_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"
	"github.com/coffeebuddy/coffeebuddy/shared/events"
	"github.com/coffeebuddy/coffeebuddy/shared/function"
	"github.com/coffeebuddy/coffeebuddy/shared/kafka"
	"github.com/coffeebuddy/coffeebuddy/shared/kafka/kafkatest"
	"github.com/coffeebuddy/coffeebuddy/shared/slackstandin"
	"github.com/slack-go/slack"
)

const (
	typeRateLimited = "com.coffeebuddy.test.rate_limited" // handler fails with a RateLimitedError (3 s)
	typeSlackPost   = "com.coffeebuddy.test.slack_post"   // handler posts to Slack
)

// rateLimitedFn is a Slack-using function: typeRateLimited fails as a
// rate-limited Slack call would (wrapped), typeSlackPost really calls
// chat.postMessage.
func rateLimitedFn(c *calls) func(d *function.Deps) (function.Handler, error) {
	return func(d *function.Deps) (function.Handler, error) {
		return function.HandlerFunc(func(ctx context.Context, e event.Event) (*event.Event, error) {
			c.add(e)
			switch e.Type() {
			case typeRateLimited:
				return nil, fmt.Errorf("DM runner: %w", &slack.RateLimitedError{RetryAfter: 3 * time.Second})
			case typeSlackPost:
				cli, err := d.Slack.Get()
				if err != nil {
					return nil, err
				}
				if _, _, err := cli.PostMessageContext(ctx, slackstandin.DefaultChannelID, slack.MsgOptionText("coffee?", false)); err != nil {
					return nil, fmt.Errorf("post: %w", err)
				}
			}
			return nil, nil
		}), nil
	}
}

func decodeRetry(t *testing.T, rec []byte) events.SlackRetry {
	t.Helper()
	var p events.SlackRetry
	if err := json.Unmarshal(rec, &p); err != nil {
		t.Fatalf("slack.retry payload: %v: %s", err, rec)
	}
	return p
}

// TestReceiverBuffersRateLimited: a handler failing on Slack's 429 gets its
// event buffered in slack.retry (attempt, not-before, the original intact)
// and answered 200; the tenth rate-limited attempt goes to the dead-letter
// topic instead.
func TestReceiverBuffersRateLimited(t *testing.T) {
	kc := kafkatest.New(t)
	srv := slackstandin.NewTestServer(t, slackstandin.Options{})
	c := &calls{}
	r := start(t, function.Spec{Name: "test-fn", Needs: function.Needs{Slack: true}, Events: rateLimitedFn(c)},
		map[string]string{"SLACK_API_URL": srv.APIURL(), "KAFKA_BROKERS": strings.Join(kc.Brokers, ",")})
	r.waitReady(t)

	// Attempt 10 first, then a first attempt, both keyed run-1: one
	// partition, so the dead letter cannot overtake the order of things.
	resp, body := do(t, ceRequest(t, r.url, "rl-10", typeRateLimited, `{"run_id":"run-1"}`, map[string]string{
		"Ce-Partitionkey": "run-1", "Ce-Coffeebuddyslackattempt": "10",
	}))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("attempt 10: %d (%s), want 200", resp.StatusCode, body)
	}
	sent := time.Now()
	resp, body = do(t, ceRequest(t, r.url, "rl-1", typeRateLimited, `{"run_id":"run-1"}`, map[string]string{
		"Ce-Partitionkey": "run-1", "Ce-Subject": "run-1",
	}))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("rate limited: %d (%s), want 200 (buffered)", resp.StatusCode, body)
	}

	recs := kc.Consume(t, events.TopicSlackRetry, 1, wait)
	if len(recs) != 1 {
		t.Fatalf("%d records in slack.retry, want 1", len(recs))
	}
	if string(recs[0].Key) != "run-1" {
		t.Errorf("slack.retry key = %q, want run-1 (the original's partitionkey)", recs[0].Key)
	}
	re, err := kafka.Event(recs[0])
	if err != nil {
		t.Fatal(err)
	}
	if re.Type() != events.TypeSlackRetry || re.Source() != "/coffeebuddy/test-fn" {
		t.Errorf("retry event type %q source %q", re.Type(), re.Source())
	}
	p := decodeRetry(t, re.Data())
	if p.Attempt != 1 || p.Function != "test-fn" || p.Method != "test-fn" {
		t.Errorf("payload = %+v, want attempt 1, function and method test-fn (the method is unknown)", p)
	}
	// Retry-After (3 s) beats the schedule's first step (1 s).
	if p.NotBefore.Before(sent.Add(3 * time.Second).Add(-time.Second)) {
		t.Errorf("not_before %v is not ≈ %v + 3s", p.NotBefore, sent)
	}
	var orig event.Event
	if err := json.Unmarshal(p.Event, &orig); err != nil {
		t.Fatalf("original event: %v: %s", err, p.Event)
	}
	if orig.ID() != "rl-1" || orig.Type() != typeRateLimited || orig.Source() != "/coffeebuddy/test" ||
		orig.Subject() != "run-1" || string(orig.Data()) != `{"run_id":"run-1"}` || orig.Extensions()["partitionkey"] != "run-1" {
		t.Errorf("original event not intact: %s", p.Event)
	}

	dls := kc.Consume(t, events.TopicDeadLetter, 1, wait)
	if len(dls) != 1 {
		t.Fatalf("%d dead letters, want 1", len(dls))
	}
	dl, err := kafka.Event(dls[0])
	if err != nil {
		t.Fatal(err)
	}
	code, _ := types.ToInteger(dl.Extensions()[events.ExtErrorCode])
	data, _ := types.ToString(dl.Extensions()[events.ExtErrorData])
	reason, _ := base64.StdEncoding.DecodeString(data)
	if dl.ID() != "rl-10" || dl.Type() != typeRateLimited || code != 429 || !strings.Contains(string(reason), "rate limited") ||
		string(dl.Data()) != `{"run_id":"run-1"}` || string(dls[0].Key) != "run-1" {
		t.Errorf("dead letter: id %s type %s code %d reason %q key %q data %s", dl.ID(), dl.Type(), code, reason, dls[0].Key, dl.Data())
	}

	mfs := r.scrape(t)
	if got := value(t, mfs, function.SlackRetriesMetric, map[string]string{"function": "test-fn", "method": "test-fn"}); got != 1 {
		t.Errorf("%s = %v, want 1 (the dead-lettered one is not a retry)", function.SlackRetriesMetric, got)
	}
	if got := value(t, mfs, "coffeebuddy_events_total", map[string]string{"type": typeRateLimited, "outcome": "slack_retry"}); got != 2 {
		t.Errorf("events_total{outcome=slack_retry} = %v, want 2", got)
	}
}

// TestReceiverRateLimitedBySlack: a real 429 from Slack (Retry-After 0):
// the retry is labelled with the method, follows the schedule (attempt 3:
// 4 s) and Slack's 429 is counted by the Slack client.
func TestReceiverRateLimitedBySlack(t *testing.T) {
	kc := kafkatest.New(t)
	srv := slackstandin.NewTestServer(t, slackstandin.Options{})
	c := &calls{}
	r := start(t, function.Spec{Name: "test-fn", Needs: function.Needs{Slack: true}, Events: rateLimitedFn(c)},
		map[string]string{"SLACK_API_URL": srv.APIURL(), "KAFKA_BROKERS": strings.Join(kc.Brokers, ",")})
	r.waitReady(t)
	srv.SetFault("chat.postMessage", slackstandin.FailN(1, 429, 0))

	sent := time.Now()
	resp, body := do(t, ceRequest(t, r.url, "post-1", typeSlackPost, `{}`, map[string]string{
		"Ce-Subject": "run-7", "Ce-Coffeebuddyslackattempt": "2",
	}))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%d (%s), want 200", resp.StatusCode, body)
	}
	recs := kc.Consume(t, events.TopicSlackRetry, 1, wait)
	if len(recs) != 1 {
		t.Fatalf("%d records in slack.retry, want 1", len(recs))
	}
	if string(recs[0].Key) != "run-7" {
		t.Errorf("key = %q, want the subject run-7", recs[0].Key)
	}
	re, err := kafka.Event(recs[0])
	if err != nil {
		t.Fatal(err)
	}
	p := decodeRetry(t, re.Data())
	if p.Attempt != 3 || p.Method != "chat.postMessage" {
		t.Errorf("payload = %+v, want attempt 3, method chat.postMessage", p)
	}
	if p.NotBefore.Before(sent.Add(3 * time.Second)) {
		t.Errorf("not_before %v, want ≈ %v + 4s (schedule, attempt 3)", p.NotBefore, sent)
	}
	mfs := r.scrape(t)
	if got := value(t, mfs, "slack_api_rate_limited_total", map[string]string{"method": "chat.postMessage"}); got != 1 {
		t.Errorf("slack_api_rate_limited_total = %v, want 1", got)
	}
	if got := value(t, mfs, function.SlackRetriesMetric, map[string]string{"method": "chat.postMessage"}); got != 1 {
		t.Errorf("%s = %v, want 1", function.SlackRetriesMetric, got)
	}
}

func TestSlackRetryDelay(t *testing.T) {
	want := []time.Duration{1, 2, 4, 8, 16, 32, 60, 60, 60, 60}
	for i, w := range want {
		if got := function.SlackRetryDelay(i+1, 0); got != w*time.Second {
			t.Errorf("attempt %d: %v, want %v", i+1, got, w*time.Second)
		}
	}
	if got := function.SlackRetryDelay(2, 30*time.Second); got != 30*time.Second {
		t.Errorf("Retry-After 30s at attempt 2: %v, want 30s", got)
	}
	if got := function.SlackRetryDelay(7, 5*time.Second); got != 60*time.Second {
		t.Errorf("Retry-After 5s at attempt 7: %v, want 60s", got)
	}
}
