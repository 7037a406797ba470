package slackapi

import (
	"context"
	"errors"
	"net/http"

	"github.com/coffeebuddy/coffeebuddy/shared/breaker"
)

// Option configures NewClients.
type Option func(*Clients)

// WithBreaker routes every Slack call through b (see breakerTransport):
// connection errors and HTTP 5xx count as failures, and while b is open a
// call fails at once, without reaching Slack, with an error wrapping
// breaker.ErrOpen.
func WithBreaker(b *breaker.Breaker) Option {
	return func(c *Clients) { c.breaker = b }
}

// Breaker returns the breaker set with WithBreaker, or nil.
func (c *Clients) Breaker() *breaker.Breaker { return c.breaker }

// breakerTransport feeds a circuit breaker from the HTTP exchanges with
// Slack and refuses calls while it is open.
type breakerTransport struct {
	base http.RoundTripper
	b    *breaker.Breaker
}

func (t *breakerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	done, err := t.b.Allow()
	if err != nil {
		if req.Body != nil {
			_ = req.Body.Close() // a RoundTripper always closes the body
		}
		return nil, err
	}
	resp, err := t.base.RoundTrip(req)
	done(SlackOutcome(req.Context(), resp, err))
	return resp, err
}

// SlackOutcome classifies one HTTP exchange with Slack: a transport error
// (refused, reset, timed out) or a 5xx is a failure; any answer below 500 is
// a success, including 4xx and 429: a rate limit is Slack asking us to slow
// down, which the retry path honours, not an outage. A call its caller
// cancelled is ignored.
func SlackOutcome(ctx context.Context, resp *http.Response, err error) breaker.Outcome {
	switch {
	case err != nil && (errors.Is(err, context.Canceled) || errors.Is(ctx.Err(), context.Canceled)):
		return breaker.Ignore
	case err != nil:
		return breaker.Failure
	case resp.StatusCode >= 500:
		return breaker.Failure
	default:
		return breaker.Success
	}
}
