package main

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/coffeebuddy/coffeebuddy/shared/events"
	"github.com/coffeebuddy/coffeebuddy/shared/function"
	"github.com/coffeebuddy/coffeebuddy/shared/kafka"
	"github.com/coffeebuddy/coffeebuddy/shared/kafka/kafkatest"
	"github.com/twmb/franz-go/pkg/kgo"
)

const wait = 20 * time.Second

func newHandler(t *testing.T) (*Handler, *kafkatest.Cluster) {
	t.Helper()
	kc := kafkatest.New(t)
	cl, err := kgo.NewClient(kgo.SeedBrokers(kc.Brokers...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return New(cl), kc
}

// original is a run.closed fact as runner-notify received it.
func original(t *testing.T, id string) event.Event {
	t.Helper()
	e := event.New()
	e.SetID(id)
	e.SetType(events.TypeRunClosed)
	e.SetSource("/coffeebuddy/run-close")
	e.SetSubject("run-1")
	e.SetTime(time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC))
	e.SetExtension(kafka.ExtPartitionKey, "run-1")
	if err := e.SetData(event.ApplicationJSON, events.RunClosed{RunID: "run-1", RunnerUserID: "U1", Reason: "fewest runs", ClosedBy: "last_call"}); err != nil {
		t.Fatal(err)
	}
	return e
}

func retryEvent(t *testing.T, orig event.Event, attempt int, notBefore time.Time) event.Event {
	t.Helper()
	b, err := json.Marshal(orig)
	if err != nil {
		t.Fatal(err)
	}
	e := event.New()
	e.SetID("slack-retry:runner-notify:" + orig.ID())
	e.SetType(events.TypeSlackRetry)
	e.SetSource("/coffeebuddy/runner-notify")
	if err := e.SetData(event.ApplicationJSON, events.SlackRetry{Event: b, Attempt: attempt, NotBefore: notBefore,
		Method: "chat.postMessage", Function: "runner-notify"}); err != nil {
		t.Fatal(err)
	}
	return e
}

// checkReproduced asserts the one record on coffee.assignments is orig,
// unchanged but for the attempt extension.
func checkReproduced(t *testing.T, kc *kafkatest.Cluster, orig event.Event, attempt string) {
	t.Helper()
	recs := kc.Consume(t, events.TopicAssignments, 1, wait)
	if len(recs) != 1 {
		t.Fatalf("%d records on %s, want 1", len(recs), events.TopicAssignments)
	}
	if string(recs[0].Key) != "run-1" {
		t.Errorf("key = %q, want run-1", recs[0].Key)
	}
	got, err := kafka.Event(recs[0])
	if err != nil {
		t.Fatal(err)
	}
	if got.ID() != orig.ID() || got.Type() != orig.Type() || got.Source() != orig.Source() || got.Subject() != orig.Subject() ||
		!got.Time().Equal(orig.Time()) || string(got.Data()) != string(orig.Data()) {
		t.Errorf("re-produced event differs:\n got %s\nwant %s", got, orig)
	}
	if got.Extensions()[events.ExtSlackAttempt] != attempt || got.Extensions()[kafka.ExtPartitionKey] != "run-1" {
		t.Errorf("extensions = %v, want %s=%s and the partitionkey", got.Extensions(), events.ExtSlackAttempt, attempt)
	}
}

func TestReproducesDueRetry(t *testing.T) {
	h, kc := newHandler(t)
	orig := original(t, "ev-1")
	if _, err := h.Handle(context.Background(), retryEvent(t, orig, 3, time.Now().Add(-time.Second))); err != nil {
		t.Fatalf("Handle: %v", err)
	}
	checkReproduced(t, kc, orig, "3")
}

func TestWaitsForNotBefore(t *testing.T) {
	h, kc := newHandler(t)
	orig := original(t, "ev-2")
	notBefore := time.Now().Add(200 * time.Millisecond)
	if _, err := h.Handle(context.Background(), retryEvent(t, orig, 1, notBefore)); err != nil {
		t.Fatalf("Handle: %v", err)
	}
	if time.Now().Before(notBefore) {
		t.Errorf("Handle returned before the not-before time")
	}
	checkReproduced(t, kc, orig, "1")
}

// TestTooEarlyIsRetried: a retry due after more than one delivery's wait
// is answered, after that wait, with a retryable error.
func TestTooEarlyIsRetried(t *testing.T) {
	h, _ := newHandler(t)
	h.maxWait = 50 * time.Millisecond
	_, err := h.Handle(context.Background(), retryEvent(t, original(t, "ev-3"), 1, time.Now().Add(10*time.Minute)))
	if err == nil || function.IsPermanent(err) {
		t.Fatalf("Handle = %v, want a retryable error", err)
	}
}

func TestCancelledWhileWaiting(t *testing.T) {
	h, _ := newHandler(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := h.Handle(ctx, retryEvent(t, original(t, "ev-4"), 1, time.Now().Add(time.Minute)))
	if !errors.Is(err, context.Canceled) || function.IsPermanent(err) {
		t.Fatalf("Handle = %v, want a retryable cancellation", err)
	}
}

func TestHandleRejectsBadInput(t *testing.T) {
	h, _ := newHandler(t)
	bad := event.New()
	bad.SetID("1")
	bad.SetType(events.TypeSlackRetry)
	bad.SetSource("/test")
	_ = bad.SetData("application/json", []byte("{not json"))

	unknown := original(t, "ev-5")
	unknown.SetType("com.coffeebuddy.nope")

	notEvent := event.New()
	notEvent.SetID("2")
	notEvent.SetType(events.TypeSlackRetry)
	notEvent.SetSource("/test")
	_ = notEvent.SetData(event.ApplicationJSON, events.SlackRetry{Event: json.RawMessage(`{"id":"x"}`), Attempt: 1})

	for name, e := range map[string]event.Event{
		"undecodable payload":   bad,
		"uncatalogued type":     retryEvent(t, unknown, 1, time.Now()),
		"original not an event": notEvent,
	} {
		if _, err := h.Handle(context.Background(), e); !function.IsPermanent(err) {
			t.Errorf("%s: Handle = %v, want a permanent error", name, err)
		}
	}
}
