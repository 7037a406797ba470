// Package breaker puts a circuit breaker in front of each downstream a
// function uses (PostgreSQL, Slack), on top of sony/gobreaker's two-step
// breaker: callers observe outcomes, and the breaker refuses at once while
// the downstream is known to be down.
//
// A breaker opens after Settings.Failures consecutive failures, stays open
// for Settings.HalfOpenAfter, then lets one trial through (half-open): a
// success closes it, a failure opens it again. While it is open every call
// fails fast with an error wrapping ErrOpen, and the function runtime answers
// events with 503 so the broker backs off instead of piling retries onto a
// downstream that is down.
package breaker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"time"

	"github.com/sony/gobreaker/v2"
)

// Defaults: open after 5 consecutive failures, try again after 30 s.
const (
	DefaultFailures      = 5
	DefaultHalfOpenAfter = 30 * time.Second
)

// ErrOpen is wrapped by every error a breaker returns instead of calling its
// downstream. Test with errors.Is(err, breaker.ErrOpen).
var ErrOpen = errors.New("circuit breaker open")

// OpenError is the refusal of an open (or busy half-open) breaker. It wraps
// ErrOpen.
type OpenError struct {
	Downstream string
	// RetryAfter is the breaker's open period: when to try again at the
	// latest.
	RetryAfter time.Duration
}

func (e *OpenError) Error() string {
	return e.Downstream + " unavailable: " + ErrOpen.Error()
}

// Unwrap returns ErrOpen.
func (e *OpenError) Unwrap() error { return ErrOpen }

// RetryAfterSeconds is RetryAfter in whole seconds, rounded up, at least 1:
// the value of a Retry-After header.
func (e *OpenError) RetryAfterSeconds() string {
	return strconv.Itoa(max(1, int(math.Ceil(e.RetryAfter.Seconds()))))
}

// State is a breaker's state; its value is the coffeebuddy_breaker_state
// gauge.
type State int

// The states, in gobreaker's order.
const (
	Closed   State = State(gobreaker.StateClosed)   // 0: calls go through
	HalfOpen State = State(gobreaker.StateHalfOpen) // 1: one trial call goes through
	Open     State = State(gobreaker.StateOpen)     // 2: calls are refused
)

func (s State) String() string { return gobreaker.State(s).String() }

// Outcome is what one call to the downstream says about its health.
type Outcome int

const (
	// Success: the downstream answered (even with an error of its own,
	// such as a unique violation or a Slack 4xx).
	Success Outcome = iota
	// Failure: the downstream is unreachable, broken or too slow
	// (connection errors, timeouts, HTTP 5xx, PostgreSQL shutting down).
	Failure
	// Ignore: the call says nothing about the downstream (the caller
	// cancelled it, or the breaker itself refused it).
	Ignore
)

func (o Outcome) String() string {
	switch o {
	case Success:
		return "success"
	case Failure:
		return "failure"
	case Ignore:
		return "ignore"
	}
	return "outcome(" + strconv.Itoa(int(o)) + ")"
}

// Settings configure a breaker; zero fields take the defaults.
type Settings struct {
	// Failures is how many consecutive failures open the breaker
	// (default 5).
	Failures uint32
	// HalfOpenAfter is how long the breaker stays open before it lets one
	// trial call through (default 30 s).
	HalfOpenAfter time.Duration
}

func (s Settings) withDefaults() Settings {
	if s.Failures == 0 {
		s.Failures = DefaultFailures
	}
	if s.HalfOpenAfter <= 0 {
		s.HalfOpenAfter = DefaultHalfOpenAfter
	}
	return s
}

// Transition is one change of state, as passed to listeners.
type Transition struct {
	Downstream string
	From, To   State
}

// Option configures New.
type Option func(*Breaker)

// WithLogger logs every transition at warn level with the downstream's
// name: "circuit breaker open", "… half-open", "… closed".
func WithLogger(log *slog.Logger) Option {
	return func(b *Breaker) {
		b.listeners = append(b.listeners, func(t Transition) {
			log.Log(context.Background(), slog.LevelWarn, "circuit breaker "+t.To.String(),
				"downstream", t.Downstream, "from", t.From.String(), "to", t.To.String(),
				"half_open_after", b.settings.HalfOpenAfter.String())
		})
	}
}

// OnTransition calls f on every transition. f runs while the breaker holds
// its lock: it must not call the breaker's methods.
func OnTransition(f func(Transition)) Option {
	return func(b *Breaker) { b.listeners = append(b.listeners, f) }
}

// Breaker guards one downstream. It is safe for concurrent use.
type Breaker struct {
	downstream string
	settings   Settings
	cb         *gobreaker.TwoStepCircuitBreaker[struct{}]
	listeners  []func(Transition)
}

// New returns a closed breaker for downstream ("postgres", "slack").
func New(downstream string, s Settings, opts ...Option) *Breaker {
	b := &Breaker{downstream: downstream, settings: s.withDefaults()}
	for _, o := range opts {
		o(b)
	}
	failures := b.settings.Failures
	b.cb = gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        downstream,
		MaxRequests: 1, // one trial call when half-open
		Timeout:     b.settings.HalfOpenAfter,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= failures },
		OnStateChange: func(_ string, from, to gobreaker.State) {
			t := Transition{Downstream: downstream, From: State(from), To: State(to)}
			for _, l := range b.listeners {
				l(t)
			}
		},
	})
	return b
}

// Downstream is the name the breaker was created with.
func (b *Breaker) Downstream() string { return b.downstream }

// Settings are the breaker's effective settings (defaults filled in).
func (b *Breaker) Settings() Settings { return b.settings }

// State returns the current state. Reading it moves an open breaker whose
// open period has passed to half-open.
func (b *Breaker) State() State { return State(b.cb.State()) }

// ConsecutiveFailures is the current run of failures (reset by a success and
// by every transition).
func (b *Breaker) ConsecutiveFailures() uint32 { return b.cb.Counts().ConsecutiveFailures }

// Err returns an *OpenError when the breaker is open, else nil. It is the
// gate for callers that only observe outcomes (Observe): it does not take
// the half-open trial slot.
func (b *Breaker) Err() error {
	if b.State() == Open {
		return b.openError()
	}
	return nil
}

func (b *Breaker) openError() error {
	return &OpenError{Downstream: b.downstream, RetryAfter: b.settings.HalfOpenAfter}
}

// Allow asks to make one call. When the breaker is open, or half-open with
// its trial call already under way, it returns an *OpenError (wrapping
// ErrOpen) and the call must not be made. Otherwise the caller makes the
// call and must report its outcome with done exactly once.
func (b *Breaker) Allow() (done func(Outcome), err error) {
	d, err := b.cb.Allow()
	if err != nil {
		// gobreaker.ErrOpenState or ErrTooManyRequests (half-open, trial
		// under way): both mean "not now".
		return nil, b.openError()
	}
	return func(o Outcome) {
		switch o {
		case Success:
			d(true)
		case Failure:
			d(false)
		case Ignore:
			// Nothing learnt. A half-open breaker's trial slot must be
			// given back, and gobreaker can only release it with an
			// outcome: stay on the safe side and count a failure, which
			// keeps the breaker open for another period. When closed,
			// reporting nothing leaves the counts as they were.
			if b.State() == HalfOpen {
				d(false)
			}
		}
	}, nil
}

// Observe records the outcome of a call that was not gated by Allow (the
// PostgreSQL pool reports every query it sees). While the breaker is open
// outcomes are dropped; while half-open the first outcome decides.
func (b *Breaker) Observe(o Outcome) {
	if o == Ignore {
		return
	}
	d, err := b.cb.Allow()
	if err != nil {
		return
	}
	d(o == Success)
}

// String is for logs: "slack (closed)".
func (b *Breaker) String() string { return fmt.Sprintf("%s (%s)", b.downstream, b.State()) }
