package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/coffeebuddy/coffeebuddy/shared/coffee"
	"github.com/coffeebuddy/coffeebuddy/shared/events"
	"github.com/coffeebuddy/coffeebuddy/shared/functest"
	"github.com/coffeebuddy/coffeebuddy/shared/function"
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
	t       *testing.T
	db      *pgtest.DB
	slack   *slackstandin.Server
	clients *slackapi.Clients
	h       *Handler
	run     coffee.Run
}

// newRig starts a run in C1 by U1 with an order by U2, who volunteered.
func newRig(t *testing.T) *rig {
	t.Helper()
	ctx := context.Background()
	db := pgtest.New(t)
	sl, clients := functest.Slack(t)
	r := &rig{t: t, db: db, slack: sl, clients: clients, h: New(store.New(db.Pool), clients)}
	r.run = functest.StartRun(t, db.Pool, store.NewRun{TeamID: "T1", ChannelID: "C1", InitiatorUserID: "U1",
		LastCallAt: clock.Add(5 * time.Minute), CreatedAt: clock})
	r.tx(func(tx pgx.Tx) (err error) {
		if _, _, err = store.PlaceOrder(ctx, tx, "T1", "C1", coffee.Order{UserID: "U2", Drink: "latte", Size: "small"}, clock); err != nil {
			return err
		}
		_, _, err = store.SetVolunteer(ctx, tx, r.run.ID, "U2")
		return err
	})
	return r
}

// announce posts the run message, as run-announce does.
func (r *rig) announce() string {
	r.t.Helper()
	return functest.Announce(r.t, r.db.Pool, r.clients, r.run)
}

func (r *rig) tx(fn func(tx pgx.Tx) error) {
	r.t.Helper()
	functest.Tx(r.t, r.db.Pool, fn)
}

func (r *rig) fact(id string) event.Event {
	return functest.Event(id, events.TypeVolunteerSet, "/coffeebuddy/run-volunteer", events.RunFact{RunID: r.run.ID.String(), UserID: "U2"})
}

func (r *rig) handle(e event.Event) {
	r.t.Helper()
	if _, err := r.h.Handle(context.Background(), e); err != nil {
		r.t.Fatal(err)
	}
}

// TestVolunteerShownInTheRunMessageOnly: the run message shows the
// volunteer; the thread stays quiet (it names the runner once, at close).
func TestVolunteerShownInTheRunMessageOnly(t *testing.T) {
	r := newRig(t)
	ts := r.announce()
	r.handle(r.fact("ce-1"))
	r.handle(r.fact("ce-1")) // redelivery
	if thread := r.slack.Thread("C1", ts); len(thread) != 0 {
		t.Fatalf("thread = %+v, want no reply", thread)
	}
	if n := len(r.slack.Calls("chat.update")); n != 1 {
		t.Fatalf("%d chat.update calls, want 1 (the redelivery is skipped)", n)
	}
	msg := r.slack.Messages("C1")[0]
	if !msg.Edited || !strings.Contains(string(msg.Blocks), "volunteered to go") {
		t.Fatalf("run message not updated with the volunteer: %s", msg.Blocks)
	}
}

// TestNotAnnouncedYet: before the run message exists there is nothing to
// update; run-announce will render the volunteer when it posts.
func TestNotAnnouncedYet(t *testing.T) {
	r := newRig(t)
	r.handle(r.fact("ce-1"))
	if n := len(r.slack.Calls("")); n != 0 {
		t.Fatalf("%d Slack calls before the run message exists", n)
	}
}

// TestSlackFailures: a 500 is retried; a message Slack will not update any
// more (deleted) does not hold the event.
func TestSlackFailures(t *testing.T) {
	r := newRig(t)
	r.announce()
	r.slack.SetFault("chat.update", slackstandin.FailN(1, 500, 0))
	if _, err := r.h.Handle(context.Background(), r.fact("ce-1")); err == nil || function.IsPermanent(err) {
		t.Fatalf("Handle = %v, want a retryable error", err)
	}
	r.handle(r.fact("ce-1"))
	r.slack.Reset() // the run message is gone from Slack
	r.handle(r.fact("ce-2"))
	if calls := r.slack.Calls("chat.update"); len(calls) != 1 || !strings.Contains(string(calls[0].Response), "message_not_found") {
		t.Fatalf("chat.update after the message went: %+v", calls)
	}
}

func TestBadEventsArePermanent(t *testing.T) {
	r := newRig(t)
	notJSON := r.fact("ce-x")
	_ = notJSON.SetData(event.ApplicationJSON, []byte("{nope"))
	badID := r.fact("ce-y")
	_ = badID.SetData(event.ApplicationJSON, events.RunFact{RunID: "nope"})
	unknown := r.fact("ce-z")
	_ = unknown.SetData(event.ApplicationJSON, events.RunFact{RunID: uuid.NewString()})
	for name, e := range map[string]event.Event{"undecodable": notJSON, "bad run id": badID, "unknown run": unknown} {
		t.Run(name, func(t *testing.T) {
			if _, err := r.h.Handle(context.Background(), e); !function.IsPermanent(err) {
				t.Fatalf("Handle = %v, want permanent", err)
			}
		})
	}
}
