package main

import (
	"context"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/coffeebuddy/coffeebuddy/shared/closing"
	"github.com/coffeebuddy/coffeebuddy/shared/coffee"
	"github.com/coffeebuddy/coffeebuddy/shared/events"
	"github.com/coffeebuddy/coffeebuddy/shared/functest"
	"github.com/coffeebuddy/coffeebuddy/shared/function"
	"github.com/coffeebuddy/coffeebuddy/shared/kafka"
	"github.com/coffeebuddy/coffeebuddy/shared/kafka/kafkatest"
	"github.com/coffeebuddy/coffeebuddy/shared/postgres/pgtest"
	"github.com/coffeebuddy/coffeebuddy/shared/slackstandin"
	"github.com/coffeebuddy/coffeebuddy/shared/store"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

var clock = time.Date(2026, 11, 21, 9, 30, 0, 0, time.UTC)

type rig struct {
	t     *testing.T
	db    *pgtest.DB
	kc    *kafkatest.Cluster
	slack *slackstandin.Server
	h     *Handler
	run   coffee.Run
}

// newRig starts a run in C1 by U1 (last call in 5 minutes) with orders by
// U2 and U3.
func newRig(t *testing.T) *rig {
	t.Helper()
	ctx := context.Background()
	db, kc := pgtest.New(t), kafkatest.New(t)
	sl, clients := functest.Slack(t)
	s := store.New(db.Pool)
	closer := closing.New(s, functest.Relay(t, db.Pool, kc), source, prometheus.NewRegistry())
	r := &rig{t: t, db: db, kc: kc, slack: sl, h: New(s, closer, clients, func() time.Time { return clock })}
	start := clock.Add(-5 * time.Minute)
	r.run = functest.StartRun(t, db.Pool, store.NewRun{TeamID: "T1", ChannelID: "C1", InitiatorUserID: "U1",
		LastCallAt: clock.Add(5 * time.Minute), CreatedAt: start})
	functest.Tx(t, db.Pool, func(tx pgx.Tx) error {
		for _, u := range []string{"U2", "U3"} {
			if _, _, err := store.PlaceOrder(ctx, tx, "T1", "C1", coffee.Order{UserID: u, Drink: "latte", Size: "small"}, start); err != nil {
				return err
			}
		}
		return nil
	})
	return r
}

func (r *rig) click(id, user string) event.Event {
	return functest.Event(id, events.TypeCloseRequest, events.SourceIngress, events.RunAction{RunID: r.run.ID.String(), TeamID: "T1", ChannelID: "C1", UserID: user, At: clock})
}

func (r *rig) handle(e event.Event) {
	r.t.Helper()
	if _, err := r.h.Handle(context.Background(), e); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rig) count(sql string, args ...any) int {
	r.t.Helper()
	return functest.Count(r.t, r.db.Pool, sql, args...)
}

func (r *rig) current() coffee.Run {
	r.t.Helper()
	run, err := store.GetRun(context.Background(), r.db.Pool, r.run.ID)
	if err != nil {
		r.t.Fatal(err)
	}
	return run
}

func ephemeralTexts(s *slackstandin.Server, user string) []string {
	var out []string
	for _, m := range s.Ephemerals(user) {
		out = append(out, m.Text)
	}
	return out
}

func TestInitiatorClosesNowOnce(t *testing.T) {
	r := newRig(t)
	r.handle(r.click("ce-1", "U1"))
	r.handle(r.click("ce-1", "U1")) // redelivery
	run := r.current()
	if run.Status != coffee.StatusClosed || run.RunnerUserID != "U2" || !run.ClosedAt.Equal(clock) ||
		run.AssignmentReason != "0 runs in the last 30 days; team median 0; tie broken by user id" {
		t.Fatalf("run = %+v", run)
	}
	if n := r.count(`SELECT count(*) FROM audit_logs WHERE event_type = 'run_closed' AND actor_user_id = 'U1'
		AND details->>'closed_by' = 'U1' AND ce_id = 'ce-1'`); n != 1 {
		t.Fatalf("%d run_closed audit rows, want 1", n)
	}
	if n := r.count(`SELECT count(*) FROM outbox WHERE ce_type = $1 AND published_at IS NOT NULL`, events.TypeRunClosed); n != 1 {
		t.Fatalf("%d published run.closed rows, want 1", n)
	}
	recs := r.kc.Consume(t, events.TopicAssignments, 1, 10*time.Second)
	if len(recs) != 1 {
		t.Fatalf("%d run.closed records, want 1", len(recs))
	}
	ev, err := kafka.Event(recs[0])
	if err != nil {
		t.Fatal(err)
	}
	var rc events.RunClosed
	if err := ev.DataAs(&rc); err != nil || rc.RunnerUserID != "U2" || rc.ClosedBy != "U1" || ev.Source() != source {
		t.Fatalf("run.closed %+v from %s (%v)", rc, ev.Source(), err)
	}
	if eph := r.slack.Ephemerals(""); len(eph) != 0 {
		t.Fatalf("ephemerals on a successful close: %+v", eph)
	}
}

func TestCloseNowByOthersIsRefused(t *testing.T) {
	r := newRig(t)
	r.handle(r.click("ce-1", "U2"))
	r.handle(r.click("ce-1", "U2")) // redelivery: no second message
	got := ephemeralTexts(r.slack, "U2")
	if len(got) != 1 || got[0] != "Only <@U1> can close this run early." {
		t.Fatalf("ephemerals to U2 = %q", got)
	}
	if m := r.slack.Ephemerals("U2")[0]; m.Channel != "C1" {
		t.Fatalf("refusal shown in %s, want C1", m.Channel)
	}
	if run := r.current(); run.Status != coffee.StatusActive || run.RunnerUserID != "" || !run.ClosedAt.IsZero() {
		t.Fatalf("run changed: %+v", run)
	}
	if n := r.count(`SELECT count(*) FROM audit_logs`) + r.count(`SELECT count(*) FROM outbox`); n != 0 {
		t.Fatalf("%d audit/outbox rows after a refused close", n)
	}
}

func TestRefusalIsRetriedWhenSlackFails(t *testing.T) {
	r := newRig(t)
	r.slack.SetFault("chat.postEphemeral", slackstandin.FailN(1, 500, 0))
	if _, err := r.h.Handle(context.Background(), r.click("ce-1", "U3")); err == nil || function.IsPermanent(err) {
		t.Fatalf("Handle = %v, want a retryable error", err)
	}
	r.handle(r.click("ce-1", "U3"))
	if got := ephemeralTexts(r.slack, "U3"); len(got) != 1 {
		t.Fatalf("ephemerals to U3 = %q, want the refusal once", got)
	}
}

func TestClickOnClosedRunSaysSo(t *testing.T) {
	r := newRig(t)
	r.handle(r.click("ce-1", "U1"))
	r.handle(r.click("ce-2", "U1")) // a double click: a second event
	if got := ephemeralTexts(r.slack, "U1"); len(got) != 1 || got[0] != "This run is already closed." {
		t.Fatalf("ephemerals to U1 = %q", got)
	}
	if n := r.count(`SELECT count(*) FROM audit_logs`); n != 1 {
		t.Fatalf("%d audit rows, want 1", n)
	}
	if n := r.count(`SELECT count(*) FROM outbox`); n != 1 {
		t.Fatalf("%d outbox rows, want 1", n)
	}
}

func TestBadEventsArePermanent(t *testing.T) {
	r := newRig(t)
	notJSON := r.click("ce-x", "U1")
	_ = notJSON.SetData(event.ApplicationJSON, []byte("{nope"))
	badID := r.click("ce-y", "U1")
	_ = badID.SetData(event.ApplicationJSON, events.RunAction{RunID: "nope", ChannelID: "C1", UserID: "U1"})
	unknown := r.click("ce-z", "U1")
	_ = unknown.SetData(event.ApplicationJSON, events.RunAction{RunID: uuid.NewString(), ChannelID: "C1", UserID: "U1"})
	noUser := r.click("ce-w", "")
	for name, e := range map[string]event.Event{"undecodable": notJSON, "bad run id": badID, "unknown run": unknown, "no user": noUser} {
		t.Run(name, func(t *testing.T) {
			if _, err := r.h.Handle(context.Background(), e); !function.IsPermanent(err) {
				t.Fatalf("Handle = %v, want permanent", err)
			}
		})
	}
	if run := r.current(); run.Status != coffee.StatusActive {
		t.Fatalf("run status %s after bad events", run.Status)
	}
}
