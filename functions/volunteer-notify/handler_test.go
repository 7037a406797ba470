package main

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/coffeebuddy/coffeebuddy/shared/blocks"
	"github.com/coffeebuddy/coffeebuddy/shared/coffee"
	"github.com/coffeebuddy/coffeebuddy/shared/events"
	"github.com/coffeebuddy/coffeebuddy/shared/functest"
	"github.com/coffeebuddy/coffeebuddy/shared/function"
	"github.com/coffeebuddy/coffeebuddy/shared/postgres/pgtest"
	"github.com/coffeebuddy/coffeebuddy/shared/slackapi"
	"github.com/coffeebuddy/coffeebuddy/shared/slackonce/slackoncetest"
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

func sameJSON(t *testing.T, got json.RawMessage, want any) bool {
	t.Helper()
	w, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	var a, b any
	if err := json.Unmarshal(got, &a); err != nil {
		t.Fatal(err)
	}
	_ = json.Unmarshal(w, &b)
	return reflect.DeepEqual(a, b)
}

func TestVolunteerShownAndToldInThreadOnce(t *testing.T) {
	r := newRig(t)
	ts := r.announce()
	r.handle(r.fact("ce-1"))
	r.handle(r.fact("ce-1")) // redelivery
	thread := r.slack.Thread("C1", ts)
	if len(thread) != 1 || thread[0].Text != ":raising_hand: <@U2> volunteered to go!" {
		t.Fatalf("thread = %+v", thread)
	}
	if !sameJSON(t, thread[0].Blocks, blocks.VolunteerReply("U2").Blocks) {
		t.Fatalf("thread reply blocks = %s", thread[0].Blocks)
	}
	if n := len(r.slack.Calls("chat.update")); n != 1 {
		t.Fatalf("%d chat.update calls, want 1", n)
	}
	msg := r.slack.Messages("C1")[0]
	if !msg.Edited || !strings.Contains(string(msg.Blocks), "volunteered to go") {
		t.Fatalf("run message not updated with the volunteer: %s", msg.Blocks)
	}
}

func TestPendingAnnouncementIsRetried(t *testing.T) {
	r := newRig(t)
	if _, err := r.h.Handle(context.Background(), r.fact("ce-1")); err == nil || function.IsPermanent(err) {
		t.Fatalf("Handle = %v, want a retryable error", err)
	}
	if n := len(r.slack.Calls("chat.postMessage")); n != 0 {
		t.Fatalf("%d posts before the run message exists", n)
	}
	ts := r.announce()
	r.handle(r.fact("ce-1"))
	if n := len(r.slack.Thread("C1", ts)); n != 1 {
		t.Fatalf("%d thread replies, want 1", n)
	}
}

func TestSlackFailureIsRetriedAndRepliesOnce(t *testing.T) {
	r := newRig(t)
	ts := r.announce()
	r.slack.SetFault("chat.postMessage", slackstandin.FailN(1, 500, 0))
	if _, err := r.h.Handle(context.Background(), r.fact("ce-1")); err == nil || function.IsPermanent(err) {
		t.Fatalf("Handle = %v, want a retryable error", err)
	}
	r.handle(r.fact("ce-1"))
	if n := len(r.slack.Thread("C1", ts)); n != 1 {
		t.Fatalf("%d thread replies, want 1", n)
	}
}

// A crash between Slack accepting the reply and our commit: the retry
// posts nothing and marks the event processed; another volunteer fact is
// another reply.
func TestReplyAlreadyPostedUnderItsKey(t *testing.T) {
	for _, crash := range slackoncetest.Crashes {
		t.Run(crash.String(), func(t *testing.T) {
			r := newRig(t)
			parent := r.announce()
			ts := slackoncetest.Posted(t, r.db.Pool, r.clients, crash, "volunteer:ce-1", "C1", parent,
				blocks.Message{Text: "U2 is going"})
			r.handle(r.fact("ce-1"))
			if thread := r.slack.Thread("C1", parent); len(thread) != 1 || thread[0].TS != ts {
				t.Fatalf("thread = %+v, want only %s", thread, ts)
			}
			if n := functest.Count(t, r.db.Pool, `SELECT count(*) FROM processed_events WHERE consumer = 'volunteer-notify' AND ce_id = 'ce-1'`); n != 1 {
				t.Fatal("event not marked processed")
			}
			r.handle(r.fact("ce-2"))
			if n := len(r.slack.Thread("C1", parent)); n != 2 {
				t.Fatalf("%d thread replies after a second volunteer fact, want 2", n)
			}
		})
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
