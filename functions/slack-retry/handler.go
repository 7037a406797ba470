package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/coffeebuddy/coffeebuddy/shared/events"
	"github.com/coffeebuddy/coffeebuddy/shared/function"
	"github.com/coffeebuddy/coffeebuddy/shared/kafka"
	"github.com/twmb/franz-go/pkg/kgo"
)

// MaxWait is the longest the handler waits for a retry's not-before time
// within one delivery: below the dispatcher's per-attempt timeout (the
// eventing stand-in's default is 60 s, Knative Serving's request timeout
// 300 s; delivery.timeout is an alpha field). A retry due later (the
// schedule's 60 s steps, a long Retry-After) is answered, after waiting
// MaxWait, with a retryable error: the Trigger's retries bring it back and
// the next delivery waits for the rest.
const MaxWait = 45 * time.Second

// Producer is the part of *kgo.Client the handler uses.
type Producer interface {
	ProduceSync(ctx context.Context, rs ...*kgo.Record) kgo.ProduceResults
}

// Handler re-produces rate-limited events once they are due.
type Handler struct {
	kafka   Producer
	now     func() time.Time
	maxWait time.Duration
}

// New returns the handler, producing with p.
func New(p Producer) *Handler { return &Handler{kafka: p, now: time.Now, maxWait: MaxWait} }

// Handle waits until the retry's NotBefore, then produces the original
// CloudEvent (same id, type, source, data and extensions, plus
// coffeebuddyslackattempt = Attempt) to its catalog topic, keyed by its
// partitionkey or subject. The original function's Trigger delivers it
// again; that function's dedup has not recorded it (the Slack call failed
// before its commit), so it runs again, and its own guards keep the calls
// Slack accepted from repeating.
//
// A redelivery of the retry produces the original once more: its
// consumer's dedup (same id) absorbs that.
func (h *Handler) Handle(ctx context.Context, e event.Event) (*event.Event, error) {
	var p events.SlackRetry
	if err := e.DataAs(&p); err != nil {
		return nil, function.Permanentf("decode %s: %w", e.Type(), err)
	}
	var orig event.Event
	if err := json.Unmarshal(p.Event, &orig); err != nil {
		return nil, function.Permanentf("decode the original event: %w", err)
	}
	if err := orig.Validate(); err != nil {
		return nil, function.Permanentf("the original event is invalid: %w", err)
	}
	topic, err := events.TopicFor(orig.Type())
	if err != nil {
		return nil, function.Permanent(err)
	}
	log := function.Logger(ctx).With("orig_id", orig.ID(), "orig_type", orig.Type(), "attempt", p.Attempt,
		"method", p.Method, "rate_limited_function", p.Function)

	if wait := p.NotBefore.Sub(h.now()); wait > 0 {
		early := wait > h.maxWait
		t := time.NewTimer(min(wait, h.maxWait))
		defer t.Stop()
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting to retry %s: %w", orig.ID(), context.Cause(ctx))
		case <-t.C:
		}
		if early {
			return nil, fmt.Errorf("retry of %s is due at %s: waited %v, the rest on the next delivery",
				orig.ID(), p.NotBefore.Format(time.RFC3339), h.maxWait)
		}
	}

	orig.SetExtension(events.ExtSlackAttempt, p.Attempt)
	rec, err := kafka.Record(topic, function.EventKey(orig), orig)
	if err != nil {
		return nil, function.Permanentf("encode the original event: %w", err)
	}
	if err := h.kafka.ProduceSync(ctx, rec).FirstErr(); err != nil {
		return nil, fmt.Errorf("re-produce %s to %s: %w", orig.ID(), topic, err)
	}
	log.Info("rate-limited event re-produced", "topic", topic, "partition", rec.Partition, "offset", rec.Offset)
	return nil, nil
}
