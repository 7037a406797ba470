package function

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"
	"github.com/coffeebuddy/coffeebuddy/shared/events"
	"github.com/coffeebuddy/coffeebuddy/shared/kafka"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/slack-go/slack"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Slack rate limits (issue 4, item 5). When a handler fails because Slack
// answered 429 (its error wraps *slack.RateLimitedError), the runtime does
// not hand the event back to the broker, whose backoff knows nothing of
// Retry-After: it buffers the event in Kafka topic slack.retry as a
// com.coffeebuddy.slack.retry event carrying the attempt and the time not
// to retry before, and acknowledges. The slack-retry function waits until
// then and re-produces the original event to its topic, so this function
// gets it again. Its processed-events dedup has not recorded it (the Slack
// call failed before the commit) and its own guards keep the calls Slack
// accepted from being repeated.
const (
	// MaxSlackAttempts is how many rate-limited attempts an event gets
	// before it is dead-lettered.
	MaxSlackAttempts = 10
	// SlackRetriesMetric counts buffered retries (docs/metrics.md).
	SlackRetriesMetric = "slack_dm_retries_total"
	// ReasonSlackRateLimited is the dead letter's coffeebuddyreason.
	ReasonSlackRateLimited = "slack rate limited"
)

// SlackRetryDelay is the wait before retry attempt n (1-based): 1, 2, 4, 8,
// 16, 32 s, then 60 s for every later attempt; Slack's Retry-After instead
// when it is longer.
func SlackRetryDelay(attempt int, retryAfter time.Duration) time.Duration {
	d := 60 * time.Second
	if attempt < 1 {
		attempt = 1
	}
	if attempt <= 6 {
		d = time.Duration(1<<(attempt-1)) * time.Second
	}
	return max(d, retryAfter)
}

// SlackAttempt is the number of rate-limited attempts e has had: its
// coffeebuddyslackattempt extension, 0 when absent or unreadable.
func SlackAttempt(e event.Event) int {
	v, ok := e.Extensions()[events.ExtSlackAttempt]
	if !ok {
		return 0
	}
	n, err := types.ToInteger(v)
	if err != nil || n < 0 {
		return 0
	}
	return int(n)
}

// EventKey is the Kafka key an event travels with: its partitionkey
// extension, else its subject.
func EventKey(e event.Event) string {
	if v, ok := e.Extensions()[kafka.ExtPartitionKey]; ok {
		if s, err := types.Format(v); err == nil && s != "" {
			return s
		}
	}
	return e.Subject()
}

// producer is the part of *kgo.Client the retrier uses.
type producer interface {
	ProduceSync(ctx context.Context, rs ...*kgo.Record) kgo.ProduceResults
}

// slackRetrier buffers rate-limited events in slack.retry.
type slackRetrier struct {
	name    string
	kafka   producer
	retries *prometheus.CounterVec
	now     func() time.Time
	// timeout bounds one produce, so an unreachable Kafka gets the event
	// a 500 (the broker redelivers) rather than a request that hangs.
	timeout time.Duration
}

func newSlackRetrier(name string, p producer, reg prometheus.Registerer) *slackRetrier {
	r := &slackRetrier{
		name:  name,
		kafka: p,
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name:        SlackRetriesMetric,
			Help:        "Events whose Slack call was rate limited, buffered in slack.retry for a later attempt, by Slack method.",
			ConstLabels: prometheus.Labels{"function": name},
		}, []string{"method"}),
		now:     time.Now,
		timeout: 10 * time.Second,
	}
	reg.MustRegister(r.retries)
	return r
}

// rateLimited reports whether err wraps Slack's 429.
func rateLimited(err error) (*slack.RateLimitedError, bool) {
	var rl *slack.RateLimitedError
	if errors.As(err, &rl) && rl != nil {
		return rl, true
	}
	return nil, false
}

func isRateLimited(err error) bool { _, ok := rateLimited(err); return ok }

// buffer produces the retry of e (or, after MaxSlackAttempts, e itself as a
// dead letter); the answer to the broker is 200 when that worked, else 500
// so the broker redelivers e and nothing is lost.
func (r *slackRetrier) buffer(ctx context.Context, e event.Event, rl *slack.RateLimitedError, method string, cause error) result {
	log := Logger(ctx)
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	if method == "" {
		method = r.name
	}
	attempt := SlackAttempt(e) + 1
	key := EventKey(e)
	if attempt > MaxSlackAttempts {
		reason := fmt.Sprintf("%s: Slack rate limited %s %d times: %v", ReasonSlackRateLimited, method, attempt-1, cause)
		dl := e.Clone()
		dl.SetExtension(events.ExtErrorDest, r.name)
		dl.SetExtension(events.ExtErrorCode, http.StatusTooManyRequests)
		dl.SetExtension(events.ExtErrorData, base64.StdEncoding.EncodeToString([]byte(reason)))
		dl.SetExtension(events.ExtReason, ReasonSlackRateLimited)
		rec, err := kafka.Record(events.TopicDeadLetter, key, dl)
		if err == nil {
			err = r.kafka.ProduceSync(ctx, rec).FirstErr()
		}
		if err != nil {
			log.Error("Slack rate limited too often; dead-lettering failed, the broker will retry", "err", err, "method", method)
			return result{status: http.StatusInternalServerError, text: "dead-letter rate-limited event: " + err.Error()}
		}
		log.Error("Slack rate limited too often; event dead-lettered", "method", method, "attempts", attempt-1,
			"topic", events.TopicDeadLetter)
		return result{status: http.StatusOK}
	}
	orig, err := json.Marshal(e)
	if err != nil {
		return result{status: http.StatusInternalServerError, text: "encode rate-limited event: " + err.Error()}
	}
	delay := SlackRetryDelay(attempt, rl.RetryAfter)
	payload := events.SlackRetry{
		Event:     orig,
		Attempt:   attempt,
		NotBefore: r.now().Add(delay).UTC(),
		Method:    method,
		Function:  r.name,
	}
	re := event.New()
	re.SetID(fmt.Sprintf("slack-retry:%s:%s:%d", r.name, e.ID(), attempt))
	re.SetType(events.TypeSlackRetry)
	re.SetSource("/coffeebuddy/" + r.name)
	re.SetTime(r.now())
	if s := e.Subject(); s != "" {
		re.SetSubject(s)
	}
	if err := re.SetData(event.ApplicationJSON, payload); err != nil {
		return result{status: http.StatusInternalServerError, text: "encode slack retry: " + err.Error()}
	}
	rec, err := kafka.Record(events.TopicSlackRetry, key, re)
	if err == nil {
		err = r.kafka.ProduceSync(ctx, rec).FirstErr()
	}
	if err != nil {
		log.Error("Slack rate limited; buffering the retry failed, the broker will retry", "err", err, "method", method)
		return result{status: http.StatusInternalServerError, text: "buffer slack retry: " + err.Error()}
	}
	r.retries.WithLabelValues(method).Inc()
	log.Warn("Slack rate limited; retry buffered", "method", method, "attempt", attempt,
		"not_before", payload.NotBefore, "delay_ms", delay.Milliseconds(), "err", cause)
	return result{status: http.StatusOK}
}
