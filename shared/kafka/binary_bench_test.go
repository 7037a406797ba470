package kafka_test

import (
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/coffeebuddy/coffeebuddy/shared/events"
	"github.com/coffeebuddy/coffeebuddy/shared/kafka"
)

// benchEvent is the CloudEvent slack-ingress produces for a `/coffee`.
func benchEvent(b *testing.B) event.Event {
	b.Helper()
	at := time.Date(2026, 11, 21, 9, 30, 0, 123456789, time.UTC)
	cmd := events.SlashCommand{
		TeamID: "T0LOCAL", ChannelID: "C00000042", UserID: "U00000042", UserName: "bench.user42",
		Command: "/coffee", Text: "in 15",
		ResponseURL: "https://hooks.slack.com/commands/T0LOCAL/7000000042/96rGlfmibIGlgcZRskXaIFfN",
		TriggerID:   "13345224651.738474920.8088930838d88f008e0ad2c447fce8b6",
		ReceivedAt:  at,
	}
	ev := event.New()
	ev.SetID("0b7e3c1e-8f0a-4d39-9a55-3f0f2d7f6a42")
	ev.SetType(events.TypeCommandCoffee)
	ev.SetSource(events.SourceIngress)
	ev.SetSubject("T0LOCAL/C00000042")
	ev.SetTime(at)
	ev.SetExtension(kafka.ExtPartitionKey, "T0LOCAL/C00000042")
	if err := ev.SetData(event.ApplicationJSON, cmd); err != nil {
		b.Fatal(err)
	}
	return ev
}

func BenchmarkRecord(b *testing.B) {
	ev := benchEvent(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := kafka.Record(events.TopicSlackEvents, "", ev); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEvent(b *testing.B) {
	rec, err := kafka.Record(events.TopicSlackEvents, "", benchEvent(b))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := kafka.Event(rec); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRecordEventRoundTrip encodes the event as a binary-mode record
// and decodes it back, as producer and consumer do.
func BenchmarkRecordEventRoundTrip(b *testing.B) {
	ev := benchEvent(b)
	b.ReportAllocs()
	for b.Loop() {
		rec, err := kafka.Record(events.TopicSlackEvents, "", ev)
		if err != nil {
			b.Fatal(err)
		}
		got, err := kafka.Event(rec)
		if err != nil {
			b.Fatal(err)
		}
		if got.ID() != ev.ID() {
			b.Fatalf("round trip lost the id: %q", got.ID())
		}
	}
}
