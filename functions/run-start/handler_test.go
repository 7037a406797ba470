package main

import (
	"context"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/coffeebuddy/coffeebuddy/shared/events"
	"github.com/coffeebuddy/coffeebuddy/shared/functest"
	"github.com/coffeebuddy/coffeebuddy/shared/function"
	"github.com/coffeebuddy/coffeebuddy/shared/kafka"
	"github.com/coffeebuddy/coffeebuddy/shared/kafka/kafkatest"
	"github.com/coffeebuddy/coffeebuddy/shared/postgres/pgtest"
	"github.com/coffeebuddy/coffeebuddy/shared/store"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

var clock = time.Date(2026, 11, 21, 9, 30, 0, 0, time.UTC)

type rig struct {
	db *pgtest.DB
	kc *kafkatest.Cluster
	h  *Handler
}

func newRig(t *testing.T) *rig {
	t.Helper()
	db, kc := pgtest.New(t), kafkatest.New(t)
	relay := functest.Relay(t, db.Pool, kc)
	return &rig{db: db, kc: kc, h: New(store.New(db.Pool), relay, 10*time.Minute, func() time.Time { return clock })}
}

func command(id, channel, user, text string) event.Event {
	return functest.Event(id, events.TypeCommandCoffee, events.SourceIngress, events.SlashCommand{
		TeamID: "T1", ChannelID: channel, UserID: user, UserName: "alice", Command: "/coffee", Text: text,
	})
}

func (r *rig) count(t *testing.T, sql string, args ...any) int {
	t.Helper()
	return functest.Count(t, r.db.Pool, sql, args...)
}

func TestCreatesRunAuditAndOutboxTogether(t *testing.T) {
	r := newRig(t)
	if _, err := r.h.Handle(context.Background(), command("ce-1", "C1", "U1", "15")); err != nil {
		t.Fatal(err)
	}
	var status, initiator string
	var created, lastCall time.Time
	err := r.db.Pool.QueryRow(context.Background(),
		`SELECT status, initiator_user_id, created_at, last_call_at FROM coffee_runs WHERE channel_id = 'C1'`).
		Scan(&status, &initiator, &created, &lastCall)
	if err != nil {
		t.Fatal(err)
	}
	if status != "active" || initiator != "U1" || !created.Equal(clock) || !lastCall.Equal(clock.Add(15*time.Minute)) {
		t.Fatalf("run = %s %s %v %v", status, initiator, created, lastCall)
	}
	if n := r.count(t, `SELECT count(*) FROM audit_logs WHERE event_type = 'run_created' AND actor_user_id = 'U1' AND ce_id = 'ce-1'`); n != 1 {
		t.Fatalf("%d audit rows, want 1", n)
	}
	if n := r.count(t, `SELECT count(*) FROM outbox WHERE ce_type = $1 AND published_at IS NOT NULL`, events.TypeRunCreated); n != 1 {
		t.Fatalf("%d published outbox rows, want 1", n)
	}
	recs := r.kc.Consume(t, events.TopicOrders, 1, 5*time.Second)
	if len(recs) != 1 {
		t.Fatalf("%d run.created records, want 1", len(recs))
	}
	ev, err := kafka.Event(recs[0])
	if err != nil {
		t.Fatal(err)
	}
	var rc events.RunCreated
	if err := ev.DataAs(&rc); err != nil || rc.ChannelID != "C1" || rc.InitiatorUserID != "U1" || string(recs[0].Key) != rc.RunID {
		t.Fatalf("run.created %+v key %s (%v)", rc, recs[0].Key, err)
	}
}

func TestRedeliveryAndSecondCommandChangeNothing(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	for _, e := range []event.Event{
		command("ce-1", "C1", "U1", ""),
		command("ce-1", "C1", "U1", ""),  // redelivery
		command("ce-2", "C1", "U2", "5"), // someone else, run already active
	} {
		if _, err := r.h.Handle(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	if n := r.count(t, `SELECT count(*) FROM coffee_runs`); n != 1 {
		t.Fatalf("%d runs, want 1", n)
	}
	if n := r.count(t, `SELECT count(*) FROM audit_logs`); n != 1 {
		t.Fatalf("%d audit rows, want 1", n)
	}
	if n := r.count(t, `SELECT count(*) FROM outbox`); n != 1 {
		t.Fatalf("%d outbox rows, want 1", n)
	}
	if n := r.count(t, `SELECT count(*) FROM processed_events WHERE consumer = 'run-start'`); n != 2 {
		t.Fatalf("%d processed events, want 2", n)
	}
}

func TestBadEventsArePermanent(t *testing.T) {
	r := newRig(t)
	notJSON := command("ce-x", "C1", "U1", "")
	_ = notJSON.SetData(event.ApplicationJSON, []byte("{nope"))
	tests := map[string]event.Event{
		"undecodable payload": notJSON,
		"no channel":          command("ce-y", "", "U1", ""),
		"bad last call":       command("ce-z", "C1", "U1", "tomorrow"),
	}
	for name, e := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := r.h.Handle(context.Background(), e); !function.IsPermanent(err) {
				t.Fatalf("Handle = %v, want a permanent error", err)
			}
		})
	}
	if n := r.count(t, `SELECT count(*) FROM coffee_runs`); n != 0 {
		t.Fatalf("%d runs from bad events", n)
	}
}
