package main

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/coffeebuddy/coffeebuddy/shared/events"
	"github.com/coffeebuddy/coffeebuddy/shared/kafka"
	"github.com/coffeebuddy/coffeebuddy/shared/kafka/kafkatest"
	"github.com/coffeebuddy/coffeebuddy/shared/outbox"
	"github.com/coffeebuddy/coffeebuddy/shared/postgres/pgtest"
	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func tick() event.Event {
	e := event.New()
	e.SetID("tick-1")
	e.SetType("dev.knative.sources.ping")
	e.SetSource("/apis/v1/namespaces/coffeebuddy/pingsources/outbox-sweep-tick")
	_ = e.SetData(event.ApplicationJSON, map[string]string{"job": "outbox-sweep"})
	return e
}

// TestTickPublishesEverythingStranded strands more rows than one batch and
// checks one tick drains them all, in order per key.
func TestTickPublishesEverythingStranded(t *testing.T) {
	db, kc := pgtest.New(t), kafkatest.New(t)
	ctx := context.Background()
	cl, err := kafka.NewClient(kc.Brokers, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	const n = batch + 7
	err = pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
		for i := range n {
			if _, err := outbox.Enqueue(ctx, tx, outbox.Message{
				Type: events.TypeRunCreated, Source: "/test", Key: "run-1",
				Data: map[string]int{"seq": i},
			}); err != nil {
				return err
			}
		}
		_, err := tx.Exec(ctx, `UPDATE outbox SET created_at = now() - interval '1 minute'`)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	h := New(outbox.NewRelay(db.Pool, cl, slog.New(slog.DiscardHandler)))
	if _, err := h.Handle(ctx, tick()); err != nil {
		t.Fatal(err)
	}
	var left int
	db.Pool.QueryRow(ctx, `SELECT count(*) FROM outbox WHERE published_at IS NULL`).Scan(&left)
	if left != 0 {
		t.Fatalf("%d rows left unpublished", left)
	}
	recs := kc.Consume(t, events.TopicOrders, n, 10*time.Second)
	if len(recs) != n {
		t.Fatalf("%d records, want %d", len(recs), n)
	}
	for i, r := range recs { // one key, one partition: order kept
		ev, err := kafka.Event(r)
		if err != nil {
			t.Fatal(err)
		}
		var d struct{ Seq int }
		if err := ev.DataAs(&d); err != nil || d.Seq != i {
			t.Fatalf("record %d carries seq %d (%v)", i, d.Seq, err)
		}
	}
	// A second tick finds nothing.
	if _, err := h.Handle(ctx, tick()); err != nil {
		t.Fatal(err)
	}
	if recs := kc.Consume(t, events.TopicOrders, n+1, time.Second); len(recs) != n {
		t.Fatalf("%d records after a second tick, want %d", len(recs), n)
	}
}
