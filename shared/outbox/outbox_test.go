package outbox_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/coffeebuddy/coffeebuddy/shared/events"
	"github.com/coffeebuddy/coffeebuddy/shared/kafka"
	"github.com/coffeebuddy/coffeebuddy/shared/kafka/kafkatest"
	"github.com/coffeebuddy/coffeebuddy/shared/outbox"
	"github.com/coffeebuddy/coffeebuddy/shared/postgres/pgtest"
	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func enqueue(t *testing.T, db *pgtest.DB, key string) int64 {
	t.Helper()
	var id int64
	err := pgx.BeginFunc(context.Background(), db.Pool, func(tx pgx.Tx) error {
		var err error
		id, err = outbox.Enqueue(context.Background(), tx, outbox.Message{
			Type: events.TypeRunCreated, Source: "/test", Subject: key, Key: key,
			Data: events.RunCreated{RunID: key, ChannelID: "C1"},
		})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func unpublished(t *testing.T, db *pgtest.DB) int {
	t.Helper()
	var n int
	if err := db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM outbox WHERE published_at IS NULL`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func newRelay(t *testing.T, db *pgtest.DB, kc *kafkatest.Cluster) *outbox.Relay {
	t.Helper()
	cl, err := kafka.NewClient(kc.Brokers, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return outbox.NewRelay(db.Pool, cl, slog.New(slog.DiscardHandler))
}

func TestPublishSendsBinaryCloudEventKeyedByRun(t *testing.T) {
	db, kc := pgtest.New(t), kafkatest.New(t)
	relay := newRelay(t, db, kc)
	ctx := context.Background()
	id := enqueue(t, db, "run-1")
	if err := relay.Publish(ctx, id); err != nil {
		t.Fatal(err)
	}
	// Publishing again (a retried handler) sends nothing new.
	if err := relay.Publish(ctx, id); err != nil {
		t.Fatal(err)
	}
	recs := kc.Consume(t, events.TopicOrders, 2, 2*time.Second)
	if len(recs) != 1 {
		t.Fatalf("%d records, want exactly 1", len(recs))
	}
	if string(recs[0].Key) != "run-1" {
		t.Errorf("key = %q, want the run id", recs[0].Key)
	}
	ev, err := kafka.Event(recs[0])
	if err != nil {
		t.Fatal(err)
	}
	var ceID string
	db.Pool.QueryRow(ctx, `SELECT ce_id FROM outbox WHERE id = $1`, id).Scan(&ceID)
	if ev.ID() != ceID || ev.Type() != events.TypeRunCreated || ev.Subject() != "run-1" {
		t.Errorf("event %s %s %s, want id %s", ev.ID(), ev.Type(), ev.Subject(), ceID)
	}
	// Knative's Kafka Broker keys its own topic by the partitionkey
	// extension: a run's facts stay on one partition end to end (ADR 0012).
	if pk := ev.Extensions()[kafka.ExtPartitionKey]; pk != "run-1" {
		t.Errorf("partitionkey = %v, want the run id", pk)
	}
	var data events.RunCreated
	if err := ev.DataAs(&data); err != nil || data.RunID != "run-1" {
		t.Errorf("data %+v %v", data, err)
	}
	if n := unpublished(t, db); n != 0 {
		t.Errorf("%d rows still unpublished", n)
	}
}

func TestRolledBackEnqueuePublishesNothing(t *testing.T) {
	db, kc := pgtest.New(t), kafkatest.New(t)
	relay := newRelay(t, db, kc)
	ctx := context.Background()
	tx, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	id, err := outbox.Enqueue(ctx, tx, outbox.Message{Type: events.TypeRunCreated, Source: "/test", Key: "k", Data: map[string]string{}})
	if err != nil {
		t.Fatal(err)
	}
	tx.Rollback(ctx)
	if err := relay.Publish(ctx, id); err != nil {
		t.Fatal(err)
	}
	if recs := kc.Consume(t, events.TopicOrders, 1, 500*time.Millisecond); len(recs) != 0 {
		t.Fatalf("%d records for a rolled-back change", len(recs))
	}
}

func TestEnqueueRejectsUncataloguedType(t *testing.T) {
	db := pgtest.New(t)
	err := pgx.BeginFunc(context.Background(), db.Pool, func(tx pgx.Tx) error {
		_, err := outbox.Enqueue(context.Background(), tx, outbox.Message{Type: "com.example.unknown", Key: "k"})
		return err
	})
	if err == nil {
		t.Fatal("an event type outside the catalog was enqueued")
	}
}

// TestSweepRepublishesStrandedRows covers a crash between commit and
// Publish: the sweep sends old unpublished rows in order and leaves fresh
// ones to their own relay.
func TestSweepRepublishesStrandedRows(t *testing.T) {
	db, kc := pgtest.New(t), kafkatest.New(t)
	relay := newRelay(t, db, kc)
	ctx := context.Background()
	for _, k := range []string{"run-a", "run-a", "run-b"} {
		enqueue(t, db, k)
	}
	if _, err := db.Pool.Exec(ctx, `UPDATE outbox SET created_at = now() - interval '1 minute'`); err != nil {
		t.Fatal(err)
	}
	fresh := enqueue(t, db, "run-c")
	n, err := relay.Sweep(ctx, 10*time.Second, 100)
	if err != nil || n != 3 {
		t.Fatalf("Sweep = %d, %v; want 3 stranded rows", n, err)
	}
	if n, err := relay.Sweep(ctx, 10*time.Second, 100); err != nil || n != 0 {
		t.Fatalf("second Sweep = %d, %v; want nothing left", n, err)
	}
	recs := kc.Consume(t, events.TopicOrders, 4, 2*time.Second)
	if len(recs) != 3 {
		t.Fatalf("%d records, want 3", len(recs))
	}
	var attempts int
	db.Pool.QueryRow(ctx, `SELECT max(attempts) FROM outbox WHERE published_at IS NOT NULL`).Scan(&attempts)
	if attempts != 1 {
		t.Errorf("attempts = %d, want 1", attempts)
	}
	var freshPublished bool
	db.Pool.QueryRow(ctx, `SELECT published_at IS NOT NULL FROM outbox WHERE id = $1`, fresh).Scan(&freshPublished)
	if freshPublished {
		t.Error("the sweep took a row younger than minAge")
	}
}
