package main

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/coffeebuddy/coffeebuddy/shared/coffee"
	"github.com/coffeebuddy/coffeebuddy/shared/events"
	"github.com/coffeebuddy/coffeebuddy/shared/functest"
	"github.com/coffeebuddy/coffeebuddy/shared/function"
	"github.com/coffeebuddy/coffeebuddy/shared/kafka"
	"github.com/coffeebuddy/coffeebuddy/shared/kafka/kafkatest"
	"github.com/coffeebuddy/coffeebuddy/shared/postgres/pgtest"
	"github.com/coffeebuddy/coffeebuddy/shared/slackapi"
	"github.com/coffeebuddy/coffeebuddy/shared/slackstandin"
	"github.com/coffeebuddy/coffeebuddy/shared/store"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

var clock = time.Date(2026, 11, 21, 9, 30, 0, 0, time.UTC)

type rig struct {
	t     *testing.T
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
	h := New(store.New(db.Pool), relay, clients, func() time.Time { return clock })
	return &rig{t: t, db: db, kc: kc, slack: sl, h: h}
}

func (r *rig) tx(fn func(pgx.Tx) error) {
	r.t.Helper()
	functest.Tx(r.t, r.db.Pool, fn)
}

// journey sets channel C1 up: a run by U1 with orders from U2 and U3,
// taken as far as stage ("active", "closed" with runner U2, "completed",
// "cancelled"). It returns the run id.
func (r *rig) journey(stage coffee.Status) uuid.UUID {
	r.t.Helper()
	ctx := context.Background()
	var id uuid.UUID
	r.tx(func(tx pgx.Tx) error {
		run, err := store.CreateRun(ctx, tx, store.NewRun{TeamID: "T1", ChannelID: "C1", InitiatorUserID: "U1",
			LastCallAt: clock.Add(10 * time.Minute), CreatedAt: clock.Add(-time.Minute)})
		id = run.ID
		return err
	})
	for _, u := range []string{"U2", "U3"} {
		r.tx(func(tx pgx.Tx) error {
			_, _, err := store.PlaceOrder(ctx, tx, "T1", "C1", coffee.Order{UserID: u, Drink: "latte", Size: "small"}, clock.Add(-time.Minute))
			return err
		})
	}
	if stage == coffee.StatusActive {
		return id
	}
	if stage == coffee.StatusCancelled {
		r.tx(func(tx pgx.Tx) error {
			_, err := store.CancelRun(ctx, tx, "T1", "C1", "U1", "earlier", clock.Add(-time.Second))
			return err
		})
		return id
	}
	r.tx(func(tx pgx.Tx) error {
		if _, _, err := store.SetVolunteer(ctx, tx, id, "U2"); err != nil {
			return err
		}
		_, _, err := store.CloseRun(ctx, tx, id, clock.Add(-30*time.Second))
		return err
	})
	if stage == coffee.StatusCompleted {
		r.tx(func(tx pgx.Tx) error {
			_, err := store.CompleteRun(ctx, tx, id, "U2", clock.Add(-10*time.Second))
			return err
		})
	}
	return id
}

func (r *rig) cancel(id, user, text string) event.Event {
	return functest.Event(id, events.TypeCommandCancel, events.SourceIngress, events.SlashCommand{
		TeamID: "T1", ChannelID: "C1", UserID: user, UserName: user, Command: "/coffee-cancel", Text: text,
		ResponseURL: r.slack.NewResponseURL("C1", user),
	})
}

func (r *rig) count(sql string, args ...any) int {
	r.t.Helper()
	return functest.Count(r.t, r.db.Pool, sql, args...)
}

type cancelled struct {
	status, by, reason string
	at                 *time.Time
}

func (r *rig) state(id uuid.UUID) cancelled {
	r.t.Helper()
	var c cancelled
	err := r.db.Pool.QueryRow(context.Background(), `SELECT status, coalesce(cancelled_by, ''), coalesce(cancel_reason, ''), cancelled_at
		FROM coffee_runs WHERE id = $1`, id).Scan(&c.status, &c.by, &c.reason, &c.at)
	if err != nil {
		r.t.Fatal(err)
	}
	return c
}

func TestInitiatorOrRunnerCancels(t *testing.T) {
	tests := []struct {
		name  string
		stage coffee.Status
		user  string
	}{
		{"initiator, taking orders", coffee.StatusActive, "U1"},
		{"initiator, after assignment", coffee.StatusClosed, "U1"},
		{"runner", coffee.StatusClosed, "U2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t)
			id := r.journey(tt.stage)
			ctx := context.Background()
			for _, ce := range []string{"ce-1", "ce-1"} { // the second is a redelivery
				if _, err := r.h.Handle(ctx, r.cancel(ce, tt.user, "  rain  ")); err != nil {
					t.Fatal(err)
				}
			}
			st := r.state(id)
			if st.status != "cancelled" || st.by != tt.user || st.reason != "rain" || st.at == nil || !st.at.Equal(clock) {
				t.Fatalf("run after cancel: %+v", st)
			}
			if n := r.count(`SELECT count(*) FROM audit_logs WHERE event_type = 'run_cancelled' AND run_id = $1
				AND actor_user_id = $2 AND details->>'by' = $2 AND details->>'reason' = 'rain' AND ce_id = 'ce-1'`, id, tt.user); n != 1 {
				t.Fatalf("%d run_cancelled audit rows, want 1", n)
			}
			if n := r.count(`SELECT count(*) FROM outbox WHERE ce_type = $1 AND published_at IS NOT NULL`, events.TypeRunCancelled); n != 1 {
				t.Fatalf("%d published run.cancelled rows, want 1", n)
			}
			recs := r.kc.Consume(t, events.TopicCompletions, 1, 5*time.Second)
			if len(recs) != 1 || string(recs[0].Key) != id.String() {
				t.Fatalf("%d records on %s", len(recs), events.TopicCompletions)
			}
			ev, err := kafka.Event(recs[0])
			if err != nil {
				t.Fatal(err)
			}
			var rc events.RunCancelled
			if err := ev.DataAs(&rc); err != nil || rc != (events.RunCancelled{RunID: id.String(), CancelledBy: tt.user, Reason: "rain"}) {
				t.Fatalf("run.cancelled %+v (%v)", rc, err)
			}
			if n := len(r.slack.Ephemerals("")); n != 0 {
				t.Fatalf("%d ephemeral answers to a successful cancel", n)
			}
		})
	}
}

func TestRefusals(t *testing.T) {
	tests := []struct {
		name  string
		stage coffee.Status // "" = no run in the channel
		user  string
		want  string
	}{
		{"orderer, run assigned", coffee.StatusClosed, "U3",
			"Only <@U1> (who started it) or <@U2> (the runner) can cancel this run."},
		{"orderer, taking orders", coffee.StatusActive, "U3",
			"Only <@U1> (who started it) can cancel this run."},
		{"another orderer, taking orders", coffee.StatusActive, "U2",
			"Only <@U1> (who started it) can cancel this run."},
		{"initiator after completion", coffee.StatusCompleted, "U1",
			"This coffee run is already complete, so it can't be cancelled."},
		{"runner after completion", coffee.StatusCompleted, "U2",
			"This coffee run is already complete, so it can't be cancelled."},
		{"no run", "", "U1", "There's no coffee run to cancel in this channel."},
		{"already cancelled", coffee.StatusCancelled, "U1", "There's no coffee run to cancel in this channel."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t)
			var id uuid.UUID
			var before cancelled
			if tt.stage != "" {
				id = r.journey(tt.stage)
				before = r.state(id)
			}
			for _, ce := range []string{"ce-1", "ce-1"} { // the second is a redelivery
				if _, err := r.h.Handle(context.Background(), r.cancel(ce, tt.user, "because")); err != nil {
					t.Fatal(err)
				}
			}
			eph := r.slack.Ephemerals(tt.user)
			if len(eph) != 1 || eph[0].Text != tt.want || eph[0].Channel != "C1" {
				t.Fatalf("ephemerals to %s: %+v, want exactly %q", tt.user, eph, tt.want)
			}
			if tt.stage != "" {
				if after := r.state(id); after.status != before.status || after.by != before.by || after.reason != before.reason {
					t.Fatalf("refused cancel changed the run: %+v -> %+v", before, after)
				}
			}
			if n := r.count(`SELECT count(*) FROM audit_logs WHERE event_type = 'run_cancelled' AND ce_id = 'ce-1'`); n != 0 {
				t.Fatalf("%d audit rows for a refused cancel", n)
			}
			if n := r.count(`SELECT count(*) FROM outbox WHERE ce_type = $1 AND ce_source = $2`, events.TypeRunCancelled, source); n != 0 {
				t.Fatalf("%d run.cancelled rows for a refused cancel", n)
			}
		})
	}
}

// TestHostileReasonIsStoredVerbatim: the reason is kept exactly as typed
// (the notice renders it; see cancel-notify and blocks.CancelNotice).
func TestHostileReasonIsStoredVerbatim(t *testing.T) {
	r := newRig(t)
	id := r.journey(coffee.StatusActive)
	reason := "<!channel> *bold* & <@U0EVE> '; DROP TABLE coffee_runs; --"
	if _, err := r.h.Handle(context.Background(), r.cancel("ce-1", "U1", reason)); err != nil {
		t.Fatal(err)
	}
	if st := r.state(id); st.status != "cancelled" || st.reason != reason {
		t.Fatalf("run after cancel: %+v, want reason %q", st, reason)
	}
	var data []byte
	if err := r.db.Pool.QueryRow(context.Background(), `SELECT data FROM outbox WHERE ce_type = $1`, events.TypeRunCancelled).Scan(&data); err != nil {
		t.Fatal(err)
	}
	var rc events.RunCancelled
	if err := json.Unmarshal(data, &rc); err != nil || rc.Reason != reason {
		t.Fatalf("run.cancelled reason %q (%v), want %q", rc.Reason, err, reason)
	}
	if n := r.count(`SELECT count(*) FROM audit_logs WHERE event_type = 'run_cancelled' AND details->>'reason' = $1`, reason); n != 1 {
		t.Fatalf("%d audit rows with the verbatim reason", n)
	}
	if n := r.count(`SELECT count(*) FROM coffee_runs`); n != 1 {
		t.Fatalf("%d runs", n)
	}
}

func TestFailedAnswerIsRetried(t *testing.T) {
	r := newRig(t)
	r.journey(coffee.StatusActive)
	r.slack.SetFault(slackstandin.MethodResponseURL, slackstandin.FailN(1, 500, 0))
	e := r.cancel("ce-1", "U3", "")
	_, err := r.h.Handle(context.Background(), e)
	if err == nil || function.IsPermanent(err) {
		t.Fatalf("Handle = %v, want a retryable error", err)
	}
	if _, err := r.h.Handle(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	if eph := r.slack.Ephemerals("U3"); len(eph) != 1 {
		t.Fatalf("%d answers after the retry, want 1", len(eph))
	}
}

// TestExpiredAnswerDoesNotHoldTheCommand: a response_url Slack no longer
// takes (30 minutes, 5 uses) is a permanent refusal: logged, and the
// command is recorded, not retried for minutes.
func TestExpiredAnswerDoesNotHoldTheCommand(t *testing.T) {
	r := newRig(t)
	r.journey(coffee.StatusActive)
	e := r.cancel("ce-1", "U3", "")
	var data events.SlashCommand
	if err := e.DataAs(&data); err != nil {
		t.Fatal(err)
	}
	for range slackstandin.ResponseURLMaxUses { // used up elsewhere
		if err := r.h.slack.Respond(context.Background(), data.ResponseURL, slackapi.Reply{Text: "earlier"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := r.h.Handle(context.Background(), e); err != nil {
		t.Fatalf("Handle = %v, want the refusal logged and the command done", err)
	}
	if n := r.count(`SELECT count(*) FROM processed_events WHERE consumer = $1 AND ce_id = 'ce-1'`, consumer); n != 1 {
		t.Fatalf("command recorded %d times, want 1", n)
	}
}

func TestBadCommandsArePermanent(t *testing.T) {
	r := newRig(t)
	notJSON := r.cancel("ce-x", "U1", "")
	_ = notJSON.SetData(event.ApplicationJSON, []byte("{nope"))
	noChannel := r.cancel("ce-y", "U1", "")
	_ = noChannel.SetData(event.ApplicationJSON, events.SlashCommand{TeamID: "T1", UserID: "U1", Command: "/coffee-cancel"})
	for name, e := range map[string]event.Event{"undecodable": notJSON, "no channel": noChannel} {
		if _, err := r.h.Handle(context.Background(), e); !function.IsPermanent(err) {
			t.Errorf("%s: Handle = %v, want permanent", name, err)
		}
	}
}
