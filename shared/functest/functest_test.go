package functest_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/coffeebuddy/coffeebuddy/shared/events"
	"github.com/coffeebuddy/coffeebuddy/shared/functest"
	"github.com/coffeebuddy/coffeebuddy/shared/kafka"
	"github.com/coffeebuddy/coffeebuddy/shared/kafka/kafkatest"
	"github.com/coffeebuddy/coffeebuddy/shared/outbox"
	"github.com/coffeebuddy/coffeebuddy/shared/postgres/pgtest"
	"github.com/coffeebuddy/coffeebuddy/shared/store"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestHelpers(t *testing.T) {
	ctx := context.Background()
	db := pgtest.New(t)
	srv, clients := functest.Slack(t)
	at := time.Date(2026, 11, 21, 9, 30, 0, 0, time.UTC)

	run := functest.StartRun(t, db.Pool, store.NewRun{TeamID: "T1", ChannelID: "C1", InitiatorUserID: "U1",
		LastCallAt: at.Add(5 * time.Minute), CreatedAt: at})
	if run.ChannelID != "C1" || run.InitiatorUserID != "U1" {
		t.Fatalf("run = %+v", run)
	}
	ts := functest.Announce(t, db.Pool, clients, run)
	if msgs := srv.Messages("C1"); len(msgs) != 1 || msgs[0].Text != "Coffee run" {
		t.Fatalf("messages = %+v", msgs)
	}
	if got, err := store.GetRun(ctx, db.Pool, run.ID); err != nil || got.SlackMessageTS != ts || ts == "" {
		t.Fatalf("run message ts = %q (%v), want %q", got.SlackMessageTS, err, ts)
	}
	if n := functest.Count(t, db.Pool, `SELECT count(*) FROM coffee_runs WHERE id = $1`, run.ID); n != 1 {
		t.Fatalf("count = %d, want 1", n)
	}

	e := functest.Event("ce-1", events.TypeRunCompleted, "/test", events.RunFact{RunID: run.ID.String(), UserID: "U2"})
	var fact events.RunFact
	if err := e.DataAs(&fact); err != nil || e.ID() != "ce-1" || e.Type() != events.TypeRunCompleted ||
		e.Source() != "/test" || fact.RunID != run.ID.String() || fact.UserID != "U2" {
		t.Fatalf("event %s %s %s %+v (%v)", e.ID(), e.Type(), e.Source(), fact, err)
	}

	kc := kafkatest.New(t)
	relay := functest.Relay(t, db.Pool, kc)
	var id int64
	functest.Tx(t, db.Pool, func(tx pgx.Tx) (err error) {
		id, err = outbox.Enqueue(ctx, tx, outbox.Message{Type: events.TypeRunCompleted, Source: "/test",
			Subject: run.ID.String(), Key: run.ID.String(), Data: fact})
		return err
	})
	if err := relay.Publish(ctx, id); err != nil {
		t.Fatal(err)
	}
	recs := kc.Consume(t, events.TopicCompletions, 1, 10*time.Second)
	if len(recs) != 1 {
		t.Fatalf("%d records, want 1", len(recs))
	}
	if ev, err := kafka.Event(recs[0]); err != nil || ev.Type() != events.TypeRunCompleted {
		t.Fatalf("record event %v (%v)", ev.Type(), err)
	}
}
