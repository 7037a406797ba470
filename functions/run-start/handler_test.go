package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/coffeebuddy/coffeebuddy/shared/events"
	"github.com/coffeebuddy/coffeebuddy/shared/functest"
	"github.com/coffeebuddy/coffeebuddy/shared/function"
	"github.com/coffeebuddy/coffeebuddy/shared/kafka"
	"github.com/coffeebuddy/coffeebuddy/shared/kafka/kafkatest"
	"github.com/coffeebuddy/coffeebuddy/shared/postgres/pgtest"
	"github.com/coffeebuddy/coffeebuddy/shared/slackapi"
	"github.com/coffeebuddy/coffeebuddy/shared/slackstandin"
	"github.com/coffeebuddy/coffeebuddy/shared/store"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

var clock = time.Date(2026, 11, 21, 9, 30, 0, 0, time.UTC)

type rig struct {
	db    *pgtest.DB
	kc    *kafkatest.Cluster
	slack *slackstandin.Server
	h     *Handler
}

func newRig(t *testing.T) *rig {
	t.Helper()
	db, kc := pgtest.New(t), kafkatest.New(t)
	relay := functest.Relay(t, db.Pool, kc)
	sl, clients := functest.Slack(t)
	return &rig{db: db, kc: kc, slack: sl, h: New(store.New(db.Pool), relay, clients, 10*time.Minute, func() time.Time { return clock })}
}

// command is /coffee typed by user in channel, with a response_url of the
// stand-in's as Slack sends one.
func (r *rig) command(id, channel, user, text string) event.Event {
	return functest.Event(id, events.TypeCommandCoffee, events.SourceIngress, events.SlashCommand{
		TeamID: "T1", ChannelID: channel, UserID: user, UserName: "alice", Command: "/coffee", Text: text,
		ResponseURL: r.slack.NewResponseURL(channel, user),
	})
}

func (r *rig) count(t *testing.T, sql string, args ...any) int {
	t.Helper()
	return functest.Count(t, r.db.Pool, sql, args...)
}

func TestCreatesRunAuditAndOutboxTogether(t *testing.T) {
	r := newRig(t)
	if _, err := r.h.Handle(context.Background(), r.command("ce-1", "C1", "U1", "15")); err != nil {
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
	if err := ev.DataAs(&rc); err != nil || rc.ChannelID != "C1" || rc.InitiatorUserID != "U1" || string(recs[0].Key) != rc.RunID ||
		rc.ResponseURL == "" {
		t.Fatalf("run.created %+v key %s (%v)", rc, recs[0].Key, err)
	}
	// Its warning and last call are scheduled, keyed by the run.
	timers := map[string]bool{}
	for _, rec := range r.kc.Consume(t, events.TopicTimers, 2, 5*time.Second) {
		ev, err := kafka.Event(rec)
		var rt events.RunTimer
		if err == nil {
			err = ev.DataAs(&rt)
		}
		if err != nil || ev.Type() != events.TypeRunTimer || rt.RunID != rc.RunID || string(rec.Key) != rc.RunID {
			t.Fatalf("timer %+v key %s (%v)", rt, rec.Key, err)
		}
		timers[rt.Kind] = true
	}
	if !timers["warn"] || !timers["last_call"] {
		t.Fatalf("timers %v, want warn and last_call", timers)
	}
	if e := r.slack.Ephemerals("U1"); len(e) != 0 {
		t.Fatalf("the starter got %d answers, want none (the run message is theirs)", len(e))
	}
}

func TestRedeliveryAndSecondCommandChangeNothing(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	for _, e := range []event.Event{
		r.command("ce-1", "C1", "U1", ""),
		r.command("ce-1", "C1", "U1", ""),  // redelivery
		r.command("ce-2", "C1", "U2", "5"), // someone else, run already active
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
	if n := r.count(t, `SELECT count(*) FROM outbox`); n != 3 {
		t.Fatalf("%d outbox rows, want 3 (run.created and two timers)", n)
	}
	if n := r.count(t, `SELECT count(*) FROM processed_events WHERE consumer = 'run-start'`); n != 2 {
		t.Fatalf("%d processed events, want 2", n)
	}
	// U2 is told, once and where they typed, which run their form is for
	// and its actual last call: their 5 minutes did not apply.
	got := r.slack.Ephemerals("U2")
	if len(got) != 1 || got[0].Via != slackstandin.MethodResponseURL || got[0].Channel != "C1" {
		t.Fatalf("answers to U2: %+v", got)
	}
	lastCall := fmt.Sprintf("<!date^%d^", clock.Add(10*time.Minute).Unix())
	for _, want := range []string{"<@U1>'s coffee run", lastCall, "only applies when starting a new run"} {
		if !strings.Contains(got[0].Text, want) {
			t.Errorf("answer %q lacks %q", got[0].Text, want)
		}
	}
}

// TestAnswerIsRetriedOrDropped: a rate-limited answer to the second /coffee
// retries the event (nothing recorded); a refused one (response_url used
// up) is logged and the command recorded.
func TestAnswerIsRetriedOrDropped(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	if _, err := r.h.Handle(ctx, r.command("ce-1", "C1", "U1", "")); err != nil {
		t.Fatal(err)
	}
	r.slack.SetFault(slackstandin.MethodResponseURL, slackstandin.FailN(1, http.StatusTooManyRequests, 0))
	second := r.command("ce-2", "C1", "U2", "")
	if _, err := r.h.Handle(ctx, second); err == nil || function.IsPermanent(err) {
		t.Fatalf("rate limited: %v, want a retryable error", err)
	}
	if n := r.count(t, `SELECT count(*) FROM processed_events WHERE ce_id = 'ce-2'`); n != 0 {
		t.Fatal("a command whose answer was rate limited was recorded")
	}
	if _, err := r.h.Handle(ctx, second); err != nil {
		t.Fatal(err)
	}
	if n := len(r.slack.Ephemerals("U2")); n != 1 {
		t.Fatalf("%d answers after the retry, want 1", n)
	}

	third := r.command("ce-3", "C1", "U3", "")
	var cmd events.SlashCommand
	if err := third.DataAs(&cmd); err != nil {
		t.Fatal(err)
	}
	for range slackstandin.ResponseURLMaxUses {
		if err := r.h.slack.Respond(ctx, cmd.ResponseURL, slackapi.Reply{Text: "elsewhere"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := r.h.Handle(ctx, third); err != nil {
		t.Fatalf("used-up response_url: %v, want the command done", err)
	}
	if n := r.count(t, `SELECT count(*) FROM processed_events WHERE ce_id = 'ce-3'`); n != 1 {
		t.Fatal("the command was not recorded")
	}
}

func TestBadEventsArePermanent(t *testing.T) {
	r := newRig(t)
	notJSON := r.command("ce-x", "C1", "U1", "")
	_ = notJSON.SetData(event.ApplicationJSON, []byte("{nope"))
	tests := map[string]event.Event{
		"undecodable payload": notJSON,
		"no channel":          r.command("ce-y", "", "U1", ""),
		"bad last call":       r.command("ce-z", "C1", "U1", "tomorrow"),
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
