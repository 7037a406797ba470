package main

import (
	"context"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/coffeebuddy/coffeebuddy/shared/events"
	"github.com/coffeebuddy/coffeebuddy/shared/functest"
	"github.com/coffeebuddy/coffeebuddy/shared/kafka"
	"github.com/coffeebuddy/coffeebuddy/shared/kafka/kafkatest"
	"github.com/coffeebuddy/coffeebuddy/shared/outbox"
	"github.com/coffeebuddy/coffeebuddy/shared/postgres/pgtest"
	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func tick() event.Event {
	return functest.Event("tick-1", "dev.knative.sources.ping", "/apis/v1/namespaces/coffeebuddy/pingsources/outbox-sweep-tick", map[string]string{"job": "outbox-sweep"})
}

// TestTickPublishesEverythingStranded strands more rows than one batch and
// checks one tick drains them all, in order per key.
func TestTickPublishesEverythingStranded(t *testing.T) {
	db, kc := pgtest.New(t), kafkatest.New(t)
	ctx := context.Background()
	const n = batch + 7
	functest.Tx(t, db.Pool, func(tx pgx.Tx) error {
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
	h := New(functest.Relay(t, db.Pool, kc))
	if _, err := h.Handle(ctx, tick()); err != nil {
		t.Fatal(err)
	}
	if left := functest.Count(t, db.Pool, `SELECT count(*) FROM outbox WHERE published_at IS NULL`); left != 0 {
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
