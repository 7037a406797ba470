package main

import (
	"context"
	"errors"
	"github.com/slack-go/slack"
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
	run   coffee.Run
}

// newRig starts a run in C1 by U1 with an order by U2.
func newRig(t *testing.T) *rig {
	t.Helper()
	db, kc := pgtest.New(t), kafkatest.New(t)
	sl, clients := functest.Slack(t)
	r := &rig{t: t, db: db, kc: kc, slack: sl, h: New(store.New(db.Pool), functest.Relay(t, db.Pool, kc), clients)}
	r.run = functest.StartRun(t, db.Pool, store.NewRun{TeamID: "T1", ChannelID: "C1", InitiatorUserID: "U1",
		LastCallAt: clock.Add(5 * time.Minute), CreatedAt: clock})
	r.tx(func(tx pgx.Tx) error {
		_, _, err := store.PlaceOrder(context.Background(), tx, "T1", "C1", coffee.Order{UserID: "U2", Drink: "latte", Size: "small"}, clock)
		return err
	})
	return r
}

func (r *rig) tx(fn func(tx pgx.Tx) error) {
	r.t.Helper()
	functest.Tx(r.t, r.db.Pool, fn)
}

func (r *rig) click(id, user string) event.Event {
	return functest.Event(id, events.TypeVolunteerRequest, events.SourceIngress, events.RunAction{RunID: r.run.ID.String(),
		TeamID: "T1", ChannelID: "C1", UserID: user, UserName: "name-of-" + user, At: clock})
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

func (r *rig) volunteer() string {
	r.t.Helper()
	run, err := store.GetRun(context.Background(), r.db.Pool, r.run.ID)
	if err != nil {
		r.t.Fatal(err)
	}
	return run.VolunteerUserID
}

func ephemeralTexts(s *slackstandin.Server, user string) []string {
	var out []string
	for _, m := range s.Ephemerals(user) {
		out = append(out, m.Text)
	}
	return out
}

func TestFirstVolunteerIsRecordedOnce(t *testing.T) {
	r := newRig(t)
	r.handle(r.click("ce-1", "U2"))
	r.handle(r.click("ce-1", "U2")) // redelivery
	if v := r.volunteer(); v != "U2" {
		t.Fatalf("volunteer = %q, want U2", v)
	}
	if n := r.count(`SELECT count(*) FROM audit_logs WHERE event_type = 'volunteer_set' AND actor_user_id = 'U2'
		AND run_id = $1 AND ce_id = 'ce-1'`, r.run.ID); n != 1 {
		t.Fatalf("%d volunteer_set audit rows, want 1", n)
	}
	if n := r.count(`SELECT count(*) FROM outbox WHERE ce_type = $1 AND published_at IS NOT NULL`, events.TypeVolunteerSet); n != 1 {
		t.Fatalf("%d published volunteer_set rows, want 1", n)
	}
	if n := r.count(`SELECT count(*) FROM users WHERE user_id = 'U2' AND display_name = 'name-of-U2'`); n != 1 {
		t.Fatal("volunteer's name not remembered")
	}
	recs := r.kc.Consume(t, events.TopicOrders, 1, 10*time.Second)
	if len(recs) != 1 || string(recs[0].Key) != r.run.ID.String() {
		t.Fatalf("%d volunteer_set records", len(recs))
	}
	ev, err := kafka.Event(recs[0])
	if err != nil {
		t.Fatal(err)
	}
	var fact events.RunFact
	if err := ev.DataAs(&fact); err != nil || ev.Type() != events.TypeVolunteerSet ||
		fact != (events.RunFact{RunID: r.run.ID.String(), UserID: "U2"}) {
		t.Fatalf("%s %+v (%v)", ev.Type(), fact, err)
	}
	// The volunteer, and only they, are thanked where they clicked.
	if got := ephemeralTexts(r.slack, ""); len(got) != 1 || got[0] != msgThanks {
		t.Fatalf("ephemerals on success: %q, want the thanks", got)
	}
}

func TestLaterVolunteersAreThankedAndChangeNothing(t *testing.T) {
	r := newRig(t)
	r.handle(r.click("ce-1", "U2"))
	r.handle(r.click("ce-2", "U3"))
	r.handle(r.click("ce-2", "U3")) // redelivery: no second message
	r.handle(r.click("ce-3", "U2")) // the volunteer clicks again
	if got := ephemeralTexts(r.slack, "U3"); len(got) != 1 || got[0] != "<@U2> already volunteered — thanks!" {
		t.Fatalf("ephemerals to U3 = %q", got)
	}
	if got := ephemeralTexts(r.slack, "U2"); len(got) != 2 || got[0] != msgThanks || got[1] != "You already volunteered — thanks!" {
		t.Fatalf("ephemerals to U2 = %q", got)
	}
	if v := r.volunteer(); v != "U2" {
		t.Fatalf("volunteer = %q, want U2", v)
	}
	if n := r.count(`SELECT count(*) FROM audit_logs`); n != 1 {
		t.Fatalf("%d audit rows, want 1", n)
	}
	if n := r.count(`SELECT count(*) FROM outbox`); n != 1 {
		t.Fatalf("%d outbox rows, want 1", n)
	}
}

func TestClosedRunTakesNoVolunteer(t *testing.T) {
	r := newRig(t)
	r.tx(func(tx pgx.Tx) error {
		_, _, err := store.CloseRun(context.Background(), tx, r.run.ID, clock.Add(time.Minute))
		return err
	})
	r.handle(r.click("ce-1", "U3"))
	want := "This run has already closed, so it no longer takes volunteers."
	if got := ephemeralTexts(r.slack, "U3"); len(got) != 1 || got[0] != want {
		t.Fatalf("ephemerals to U3 = %q", got)
	}
	if v := r.volunteer(); v != "" {
		t.Fatalf("volunteer = %q on a closed run", v)
	}
	if n := r.count(`SELECT count(*) FROM outbox`); n != 0 {
		t.Fatalf("%d outbox rows, want 0", n)
	}
}

func TestBadEventsArePermanent(t *testing.T) {
	r := newRig(t)
	notJSON := r.click("ce-x", "U2")
	_ = notJSON.SetData(event.ApplicationJSON, []byte("{nope"))
	badID := r.click("ce-y", "U2")
	_ = badID.SetData(event.ApplicationJSON, events.RunAction{RunID: "nope", ChannelID: "C1", UserID: "U2"})
	unknown := r.click("ce-z", "U2")
	_ = unknown.SetData(event.ApplicationJSON, events.RunAction{RunID: uuid.NewString(), ChannelID: "C1", UserID: "U2"})
	for name, e := range map[string]event.Event{"undecodable": notJSON, "bad run id": badID, "unknown run": unknown, "no user": r.click("ce-w", "")} {
		t.Run(name, func(t *testing.T) {
			if _, err := r.h.Handle(context.Background(), e); !function.IsPermanent(err) {
				t.Fatalf("Handle = %v, want permanent", err)
			}
		})
	}
	if n := r.count(`SELECT count(*) FROM processed_events`); n != 0 {
		t.Fatalf("%d processed events from bad events", n)
	}
}

// TestRateLimitedRefusalIsRetriedNotLost: a refusal Slack rate-limits is
// not recorded, so the retried click answers exactly once.
func TestRateLimitedRefusalIsRetriedNotLost(t *testing.T) {
	r := newRig(t)
	r.handle(r.click("ce-1", "U2"))
	r.slack.SetFault("chat.postEphemeral", slackstandin.FailN(1, 429, time.Second))
	_, err := r.h.Handle(context.Background(), r.click("ce-2", "U3"))
	var rl *slack.RateLimitedError
	if !errors.As(err, &rl) {
		t.Fatalf("Handle = %v, want an error carrying Slack's rate limit", err)
	}
	r.handle(r.click("ce-2", "U3")) // back from slack.retry
	if got := ephemeralTexts(r.slack, "U3"); len(got) != 1 || got[0] != "<@U2> already volunteered — thanks!" {
		t.Fatalf("answers to U3: %q, want exactly one", got)
	}
}
