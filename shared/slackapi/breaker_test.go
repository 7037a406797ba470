package slackapi_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/coffeebuddy/coffeebuddy/shared/blocks"
	"github.com/coffeebuddy/coffeebuddy/shared/breaker"
	"github.com/coffeebuddy/coffeebuddy/shared/config"
	"github.com/coffeebuddy/coffeebuddy/shared/slackapi"
	"github.com/coffeebuddy/coffeebuddy/shared/slackstandin"
	"github.com/slack-go/slack"
)

const waitLimit = 20 * time.Second

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", waitLimit, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

var token = config.StaticSecret("SLACK_BOT_TOKEN", slackstandin.DefaultBotToken)

func post(t *testing.T, c *slackapi.Clients) error {
	t.Helper()
	cli, err := c.Get()
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = cli.PostMessageContext(context.Background(), slackstandin.DefaultChannelID, slack.MsgOptionText("coffee?", false))
	return err
}

// TestSlackBreaker: five 500s in a row open the breaker; calls then fail at
// once without reaching Slack; after the open period one trial goes
// through: a failure opens it again, a success closes it.
func TestSlackBreaker(t *testing.T) {
	// down returns clients whose breaker five 500s have opened.
	down := func(t *testing.T, s breaker.Settings) (*slackstandin.Server, *slackapi.Clients, *breaker.Breaker) {
		t.Helper()
		srv := slackstandin.NewTestServer(t, slackstandin.Options{})
		b := breaker.New("slack", s)
		c := slackapi.NewClients(token, srv.APIURL(), slackapi.WithBreaker(b))
		if c.Breaker() != b {
			t.Fatal("Breaker() is not the one given")
		}
		srv.SetFault("chat.postMessage", slackstandin.FailN(5, 500, 0))
		for i := 1; i <= 5; i++ {
			if b.State() != breaker.Closed {
				t.Fatalf("before call %d: %v, want closed", i, b.State())
			}
			if err := post(t, c); err == nil || errors.Is(err, breaker.ErrOpen) {
				t.Fatalf("call %d: %v, want Slack's 500", i, err)
			}
		}
		return srv, c, b
	}
	reached := func(srv *slackstandin.Server) int { return len(srv.Calls("chat.postMessage")) }

	t.Run("open fails fast", func(t *testing.T) {
		srv, c, b := down(t, breaker.Settings{}) // open for 30 s
		if b.State() != breaker.Open {
			t.Fatalf("after five 500s: %v, want open", b.State())
		}
		err := post(t, c)
		var oe *breaker.OpenError
		if !errors.Is(err, breaker.ErrOpen) || !errors.As(err, &oe) || oe.Downstream != "slack" {
			t.Fatalf("6th call: %v, want an OpenError for slack", err)
		}
		if got := reached(srv); got != 5 {
			t.Fatalf("chat.postMessage reached Slack %d times, want 5 (the 6th must fail fast)", got)
		}
		// Every path to Slack is guarded, not only slack-go's.
		view := blocks.OrderModal(blocks.OrderMetadata{TeamID: "T1", ChannelID: "C1"}, blocks.Prefill{})
		if err := c.OpenView(context.Background(), "trigger-1", view); !errors.Is(err, breaker.ErrOpen) {
			t.Errorf("OpenView while open: %v, want ErrOpen", err)
		}
		if n := len(srv.Calls("views.open")); n != 0 {
			t.Errorf("views.open reached Slack %d times while open", n)
		}
	})

	t.Run("half-open trials", func(t *testing.T) {
		srv, c, b := down(t, breaker.Settings{HalfOpenAfter: 100 * time.Millisecond})
		// A failed trial opens it again.
		srv.SetFault("chat.postMessage", slackstandin.FailN(1, 503, 0))
		eventually(t, "half-open", func() bool { return b.State() == breaker.HalfOpen })
		if err := post(t, c); err == nil || errors.Is(err, breaker.ErrOpen) {
			t.Fatalf("trial: %v, want Slack's 503", err)
		}
		if got := reached(srv); got != 6 {
			t.Fatalf("the trial did not reach Slack: %d calls, want 6", got)
		}
		if b.State() == breaker.Closed {
			t.Fatal("closed after a failed trial")
		}
		// A successful trial closes it.
		eventually(t, "half-open again", func() bool { return b.State() == breaker.HalfOpen })
		if err := post(t, c); err != nil {
			t.Fatalf("trial with Slack back: %v", err)
		}
		if b.State() != breaker.Closed {
			t.Fatalf("after a successful trial: %v, want closed", b.State())
		}
		if got := reached(srv); got != 7 {
			t.Errorf("chat.postMessage reached Slack %d times, want 7", got)
		}
		if msgs := srv.Messages(slackstandin.DefaultChannelID); len(msgs) != 1 {
			t.Errorf("%d messages in the channel, want the one the trial posted", len(msgs))
		}
	})
}

// TestSlackBreakerAnswersAreSuccesses: 429 (Slack asking us to slow down)
// and other 4xx are answers, not outages.
func TestSlackBreakerAnswersAreSuccesses(t *testing.T) {
	srv := slackstandin.NewTestServer(t, slackstandin.Options{})
	b := breaker.New("slack", breaker.Settings{})
	c := slackapi.NewClients(token, srv.APIURL(), slackapi.WithBreaker(b))
	for _, status := range []int{429, 400, 404} {
		srv.SetFault("chat.postMessage", slackstandin.FailN(10, status, time.Second))
		for i := range 10 {
			err := post(t, c)
			if err == nil || errors.Is(err, breaker.ErrOpen) {
				t.Fatalf("%d, call %d: %v, want Slack's %d", status, i, err, status)
			}
			if status == 429 {
				var rl *slack.RateLimitedError
				if !errors.As(err, &rl) {
					t.Fatalf("429: %v, want a RateLimitedError", err)
				}
			}
		}
		if b.State() != breaker.Closed || b.ConsecutiveFailures() != 0 {
			t.Errorf("after ten %ds: %v with %d consecutive failures, want closed, 0", status, b.State(), b.ConsecutiveFailures())
		}
	}
	if got := len(srv.Calls("chat.postMessage")); got != 30 {
		t.Errorf("chat.postMessage reached Slack %d times, want 30", got)
	}
}

// TestSlackBreakerConnectionErrors: Slack unreachable counts.
func TestSlackBreakerConnectionErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	b := breaker.New("slack", breaker.Settings{})
	c := slackapi.NewClients(token, "http://"+addr+"/api/", slackapi.WithBreaker(b))
	for i := range 5 {
		if err := post(t, c); err == nil || errors.Is(err, breaker.ErrOpen) {
			t.Fatalf("call %d: %v, want a connection error", i, err)
		}
	}
	if err := post(t, c); !errors.Is(err, breaker.ErrOpen) {
		t.Fatalf("6th call: %v, want ErrOpen", err)
	}
}

// TestSlackWithoutBreaker: NewClients without WithBreaker behaves as before.
func TestSlackWithoutBreaker(t *testing.T) {
	srv := slackstandin.NewTestServer(t, slackstandin.Options{})
	c := slackapi.NewClients(token, srv.APIURL())
	if c.Breaker() != nil {
		t.Fatal("a breaker without WithBreaker")
	}
	srv.SetFault("chat.postMessage", slackstandin.FailN(8, 500, 0))
	for range 8 {
		if err := post(t, c); err == nil || errors.Is(err, breaker.ErrOpen) {
			t.Fatalf("want Slack's 500, got %v", err)
		}
	}
	if got := len(srv.Calls("chat.postMessage")); got != 8 {
		t.Errorf("chat.postMessage reached Slack %d times, want 8", got)
	}
}
