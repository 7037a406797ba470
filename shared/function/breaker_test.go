package function_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/coffeebuddy/coffeebuddy/shared/breaker"
	"github.com/coffeebuddy/coffeebuddy/shared/breaker/breakertest"
	"github.com/coffeebuddy/coffeebuddy/shared/function"
	"github.com/coffeebuddy/coffeebuddy/shared/kafka/kafkatest"
	"github.com/coffeebuddy/coffeebuddy/shared/postgres/pgtest"
	"github.com/coffeebuddy/coffeebuddy/shared/slackstandin"
	"github.com/slack-go/slack"
)

// slackPoster is a function that posts one message per event.
func slackPoster(c *calls) func(d *function.Deps) (function.Handler, error) {
	return func(d *function.Deps) (function.Handler, error) {
		return function.HandlerFunc(func(ctx context.Context, e event.Event) (*event.Event, error) {
			c.add(e)
			cli, err := d.Slack.Get()
			if err != nil {
				return nil, err
			}
			if _, _, err := cli.PostMessageContext(ctx, slackstandin.DefaultChannelID, slack.MsgOptionText("coffee?", false)); err != nil {
				return nil, fmt.Errorf("post: %w", err)
			}
			return nil, nil
		}), nil
	}
}

// TestReceiverSlackBreakerOpen: five events fail on Slack 500s; the sixth
// is answered 503 at once, without running the handler or calling Slack.
func TestReceiverSlackBreakerOpen(t *testing.T) {
	srv := slackstandin.NewTestServer(t, slackstandin.Options{})
	c := &calls{}
	r := start(t, function.Spec{Name: "test-fn", Needs: function.Needs{Slack: true}, Events: slackPoster(c)},
		map[string]string{"SLACK_API_URL": srv.APIURL(), "KAFKA_BROKERS": strings.Join(kafkatest.New(t).Brokers, ",")})
	r.waitReady(t)

	srv.SetFault("chat.postMessage", slackstandin.FailN(5, 500, 0))
	for i := 1; i <= 5; i++ {
		resp, body := do(t, ceRequest(t, r.url, fmt.Sprintf("s-%d", i), typeOK, `{}`, nil))
		if resp.StatusCode != http.StatusInternalServerError {
			t.Fatalf("event %d: %d (%s), want 500", i, resp.StatusCode, body)
		}
	}
	resp, body := do(t, ceRequest(t, r.url, "s-6", typeOK, `{}`, nil))
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("event 6: %d (%s), want 503", resp.StatusCode, body)
	}
	if got := resp.Header.Get("Retry-After"); got != "30" {
		t.Errorf("Retry-After = %q, want 30", got)
	}
	if !strings.Contains(body, "slack unavailable: circuit breaker open") {
		t.Errorf("body = %q, want it to say slack is unavailable", body)
	}
	if n := c.count(); n != 5 {
		t.Errorf("handler ran %d times, want 5 (not for the refused event)", n)
	}
	if n := len(srv.Calls("chat.postMessage")); n != 5 {
		t.Errorf("Slack saw %d calls, want 5", n)
	}

	mfs := r.scrape(t)
	fn := map[string]string{"function": "test-fn", "downstream": "slack"}
	if got := value(t, mfs, "coffeebuddy_breaker_state", fn); got != 2 {
		t.Errorf("coffeebuddy_breaker_state{slack} = %v, want 2", got)
	}
	if got := value(t, mfs, "coffeebuddy_breaker_transitions_total",
		map[string]string{"function": "test-fn", "downstream": "slack", "from": "closed", "to": "open"}); got != 1 {
		t.Errorf("transitions closed→open = %v, want 1", got)
	}
	if got := value(t, mfs, "coffeebuddy_events_total", map[string]string{"type": typeOK, "outcome": "unavailable"}); got != 1 {
		t.Errorf("events_total{outcome=unavailable} = %v, want 1", got)
	}
	if got := value(t, mfs, "coffeebuddy_events_total", map[string]string{"type": typeOK, "outcome": "retry"}); got != 5 {
		t.Errorf("events_total{outcome=retry} = %v, want 5", got)
	}
	if _, ok := r.logs.find(t, "circuit breaker open", map[string]any{"downstream": "slack", "level": "WARN"}); !ok {
		t.Errorf("no WARN log of the breaker opening:\n%s", r.logs.String())
	}
	if _, ok := r.logs.find(t, "downstream unavailable; the broker will retry later", map[string]any{"ce_id": "s-6"}); !ok {
		t.Errorf("no log of the refused event:\n%s", r.logs.String())
	}
}

// TestReceiverPostgresBreaker: PostgreSQL goes away under a running
// function: five events fail (500), then events are refused with 503
// without running the handler; when the database is back, the first event
// after the open period is the trial, succeeds and closes the breaker.
func TestReceiverPostgresBreaker(t *testing.T) {
	db := pgtest.New(t)
	u, err := url.Parse(db.URL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := breakertest.NewProxy(t, u.Host)
	var handled atomic.Int64
	var deps atomic.Pointer[function.Deps]
	r := start(t, function.Spec{
		Name:  "test-fn",
		Needs: function.Needs{DB: true},
		// Long enough that the sixth event surely comes before the trial,
		// even on a loaded machine; short enough to wait for.
		Breaker: breaker.Settings{HalfOpenAfter: 2 * time.Second},
		Events: func(d *function.Deps) (function.Handler, error) {
			deps.Store(d)
			return function.HandlerFunc(func(ctx context.Context, e event.Event) (*event.Event, error) {
				handled.Add(1)
				_, err := d.DB.Exec(ctx, "select 1")
				return nil, err
			}), nil
		},
	}, map[string]string{"DATABASE_URL": proxy.URL(t, db.URL)})
	// Not probing: the background readiness check then is the one that
	// succeeds and stops, so no check of its own pings a database that is
	// down and counts as one of the failures below.
	eventually(t, "the ready log line", func() bool {
		_, ok := r.logs.find(t, "ready", nil)
		return ok
	})
	if b := deps.Load().Breakers; b.Postgres == nil || b.Slack != nil {
		t.Fatalf("Deps.Breakers = %+v, want postgres only", b)
	}
	send := func(id string) (int, string, http.Header) {
		resp, body := do(t, ceRequest(t, r.url, id, typeOK, `{}`, nil))
		return resp.StatusCode, body, resp.Header
	}
	if code, body, _ := send("p-0"); code != http.StatusOK {
		t.Fatalf("with the database up: %d (%s)", code, body)
	}

	proxy.Down()
	for i := 1; i <= 5; i++ {
		if code, body, _ := send(fmt.Sprintf("p-%d", i)); code != http.StatusInternalServerError {
			t.Fatalf("event %d with the database down: %d (%s), want 500", i, code, body)
		}
	}
	before := handled.Load()
	code, body, h := send("p-6")
	if code != http.StatusServiceUnavailable || h.Get("Retry-After") != "2" || !strings.Contains(body, "postgres unavailable") {
		t.Fatalf("event 6: %d, Retry-After %q (%s); want 503, 2 (the open period), postgres unavailable",
			code, h.Get("Retry-After"), body)
	}
	if handled.Load() != before {
		t.Fatal("the handler ran for a refused event")
	}
	if got := value(t, r.scrape(t), "coffeebuddy_breaker_state", map[string]string{"downstream": "postgres"}); got != 2 {
		t.Errorf("coffeebuddy_breaker_state{postgres} = %v, want 2", got)
	}

	proxy.Up()
	// Refused (503, handler not run) until the open period ends; then the
	// trial event goes through.
	deadline := time.Now().Add(wait)
	for i := 7; ; i++ {
		before := handled.Load()
		code, body, _ := send(fmt.Sprintf("p-%d", i))
		if code == http.StatusOK {
			break
		}
		if code != http.StatusServiceUnavailable || handled.Load() != before {
			t.Fatalf("event %d while open: %d (%s), handler ran %d times; want 503 without the handler",
				i, code, body, handled.Load()-before)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no trial let through within %v", wait)
		}
		time.Sleep(50 * time.Millisecond)
	}
	mfs := r.scrape(t)
	if got := value(t, mfs, "coffeebuddy_breaker_state", map[string]string{"downstream": "postgres"}); got != 0 {
		t.Errorf("coffeebuddy_breaker_state{postgres} = %v, want 0", got)
	}
	for _, tr := range [][2]string{{"closed", "open"}, {"open", "half-open"}, {"half-open", "closed"}} {
		if got := value(t, mfs, "coffeebuddy_breaker_transitions_total",
			map[string]string{"downstream": "postgres", "from": tr[0], "to": tr[1]}); got != 1 {
			t.Errorf("transitions %s→%s = %v, want 1", tr[0], tr[1], got)
		}
	}
}

// TestReceiverHandlerErrOpen: a handler whose call was refused by a
// breaker (the error wraps breaker.ErrOpen) gets 503, not 500 or 400.
func TestReceiverHandlerErrOpen(t *testing.T) {
	r := start(t, function.Spec{Name: "test-fn", Events: func(*function.Deps) (function.Handler, error) {
		return function.HandlerFunc(func(_ context.Context, e event.Event) (*event.Event, error) {
			switch e.ID() {
			case "typed":
				return nil, fmt.Errorf("post: %w", &breaker.OpenError{Downstream: "slack", RetryAfter: 12 * time.Second})
			case "permanent":
				return nil, function.Permanent(fmt.Errorf("post: %w", breaker.ErrOpen))
			}
			return nil, fmt.Errorf("post: %w", breaker.ErrOpen)
		}), nil
	}}, nil)
	r.waitReady(t)
	for _, tt := range []struct{ id, retryAfter string }{{"typed", "12"}, {"bare", "30"}, {"permanent", "30"}} {
		resp, body := do(t, ceRequest(t, r.url, tt.id, typeOK, `{}`, nil))
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != tt.retryAfter {
			t.Errorf("%s: %d, Retry-After %q (%s); want 503, %s", tt.id, resp.StatusCode, resp.Header.Get("Retry-After"), body, tt.retryAfter)
		}
	}
}

func TestDepsBreakers(t *testing.T) {
	var got atomic.Value
	r := start(t, function.Spec{
		Name:  "test-fn",
		Needs: function.Needs{Slack: true},
		Events: func(d *function.Deps) (function.Handler, error) {
			got.Store(d.Breakers)
			if d.Slack.Breaker() != d.Breakers.Slack {
				return nil, errors.New("the Slack client does not use Deps.Breakers.Slack")
			}
			return okHandler(d)
		},
	}, map[string]string{"KAFKA_BROKERS": strings.Join(kafkatest.New(t).Brokers, ",")})
	r.waitReady(t)
	b := got.Load().(function.Breakers)
	if b.Slack == nil || b.Postgres != nil || len(b.All()) != 1 {
		t.Fatalf("Breakers = %+v, want Slack only", b)
	}
	if s := b.Slack.Settings(); s.Failures != 5 || s.HalfOpenAfter != 30*time.Second {
		t.Errorf("default settings = %+v, want 5 / 30s", s)
	}
	if b.Err() != nil {
		t.Errorf("Err() = %v with every breaker closed", b.Err())
	}
	// Exported from the start, closed.
	if got := value(t, r.scrape(t), "coffeebuddy_breaker_state", map[string]string{"function": "test-fn", "downstream": "slack"}); got != 0 {
		t.Errorf("coffeebuddy_breaker_state{slack} = %v, want 0", got)
	}
}
