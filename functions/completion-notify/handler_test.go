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
	ts      string
}

// newRig has a run in C1 (initiator U1) with orders by U2, U3 (twice: an
// edit) and U4, closed with U2 the runner (tie broken by user id).
func newRig(t *testing.T) *rig {
	t.Helper()
	ctx := context.Background()
	db := pgtest.New(t)
	sl, clients := functest.Slack(t)
	r := &rig{t: t, db: db, slack: sl, clients: clients, h: New(store.New(db.Pool), clients)}
	start := clock.Add(-time.Hour)
	r.run = functest.StartRun(t, db.Pool, store.NewRun{TeamID: "T1", ChannelID: "C1", InitiatorUserID: "U1",
		LastCallAt: start.Add(10 * time.Minute), CreatedAt: start})
	r.tx(func(tx pgx.Tx) (err error) {
		for _, o := range []coffee.Order{
			{UserID: "U2", Drink: "latte", Size: "small"},
			{UserID: "U3", Drink: "mocha", Size: "large"},
			{UserID: "U4", Drink: "espresso", Size: "small"},
			{UserID: "U3", Drink: "latte", Size: "large"},
		} {
			if _, _, err := store.PlaceOrder(ctx, tx, "T1", "C1", o, start); err != nil {
				return err
			}
		}
		_, _, err = store.CloseRun(ctx, tx, r.run.ID, start.Add(10*time.Minute))
		return err
	})
	return r
}

func (r *rig) tx(fn func(tx pgx.Tx) error) {
	r.t.Helper()
	functest.Tx(r.t, r.db.Pool, fn)
}

func (r *rig) announce() {
	r.t.Helper()
	ts := functest.Announce(r.t, r.db.Pool, r.clients, r.run)
	r.ts = ts
}

func (r *rig) complete() {
	r.t.Helper()
	r.tx(func(tx pgx.Tx) error {
		_, err := store.CompleteRun(context.Background(), tx, r.run.ID, "U2", clock)
		return err
	})
}

func (r *rig) fact(id string) event.Event {
	return functest.Event(id, events.TypeRunCompleted, "/coffeebuddy/run-complete", events.RunFact{RunID: r.run.ID.String(), UserID: "U2"})
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

func TestCompletionTagsEveryOrdererOnce(t *testing.T) {
	r := newRig(t)
	r.announce()
	r.complete()
	r.handle(r.fact("ce-1"))
	r.handle(r.fact("ce-1")) // redelivery
	thread := r.slack.Thread("C1", r.ts)
	if len(thread) != 1 {
		t.Fatalf("%d thread replies, want 1", len(thread))
	}
	want := ":white_check_mark: Coffee's here! <@U3> <@U4> — thanks <@U2>!"
	if thread[0].Text != want {
		t.Fatalf("thread reply = %q, want %q", thread[0].Text, want)
	}
	for _, u := range []string{"U2", "U3", "U4"} {
		if n := strings.Count(thread[0].Text, "<@"+u+">"); n != 1 {
			t.Errorf("%s tagged %d times", u, n)
		}
	}
	run, _ := store.GetRun(context.Background(), r.db.Pool, r.run.ID)
	orders, _ := store.RunOrders(context.Background(), r.db.Pool, r.run.ID)
	if !sameJSON(t, thread[0].Blocks, blocks.CompletionReply(run, orders).Blocks) {
		t.Fatalf("reply blocks = %s", thread[0].Blocks)
	}
	parent := r.slack.Messages("C1")[0]
	if !parent.Edited || !strings.Contains(string(parent.Blocks), "delivered by") {
		t.Fatalf("run message not updated in place: %s", parent.Blocks)
	}
	if n := len(r.slack.Calls("chat.update")); n != 1 {
		t.Fatalf("%d chat.update calls, want 1", n)
	}
}

func TestPendingAnnouncementAndSlackFailuresAreRetried(t *testing.T) {
	r := newRig(t)
	r.complete()
	if _, err := r.h.Handle(context.Background(), r.fact("ce-1")); err == nil || function.IsPermanent(err) {
		t.Fatalf("Handle = %v, want a retryable error", err)
	}
	r.announce()
	r.slack.SetFault("chat.postMessage", slackstandin.FailN(1, 500, 0))
	if _, err := r.h.Handle(context.Background(), r.fact("ce-1")); err == nil || function.IsPermanent(err) {
		t.Fatalf("Handle = %v, want a retryable error", err)
	}
	r.handle(r.fact("ce-1"))
	if n := len(r.slack.Thread("C1", r.ts)); n != 1 {
		t.Fatalf("%d thread replies, want 1", n)
	}
}

// A crash between Slack accepting the completion reply and our commit: the
// retry posts nothing and marks the event processed.
func TestCompletionAlreadyPostedUnderItsKey(t *testing.T) {
	for _, crash := range slackoncetest.Crashes {
		t.Run(crash.String(), func(t *testing.T) {
			r := newRig(t)
			r.announce()
			r.complete()
			ts := slackoncetest.Posted(t, r.db.Pool, r.clients, crash, "completion:"+r.run.ID.String(), "C1", r.ts,
				blocks.Message{Text: "Coffee's here!"})
			r.handle(r.fact("ce-1"))
			r.handle(r.fact("ce-2")) // the fact again under another id
			if thread := r.slack.Thread("C1", r.ts); len(thread) != 1 || thread[0].TS != ts {
				t.Fatalf("thread = %+v, want only %s", thread, ts)
			}
			if n := functest.Count(t, r.db.Pool, `SELECT count(*) FROM processed_events WHERE consumer = 'completion-notify'`); n != 2 {
				t.Fatalf("%d events marked processed, want 2", n)
			}
		})
	}
}

func TestBadEventsArePermanent(t *testing.T) {
	r := newRig(t)
	r.announce()
	notJSON := r.fact("ce-x")
	_ = notJSON.SetData(event.ApplicationJSON, []byte("{nope"))
	badID := r.fact("ce-y")
	_ = badID.SetData(event.ApplicationJSON, events.RunFact{RunID: "nope"})
	unknown := r.fact("ce-z")
	_ = unknown.SetData(event.ApplicationJSON, events.RunFact{RunID: uuid.NewString()})
	for name, e := range map[string]event.Event{
		"undecodable": notJSON, "bad run id": badID, "unknown run": unknown,
		"run not completed": r.fact("ce-w"), // closed, not completed
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := r.h.Handle(context.Background(), e); !function.IsPermanent(err) {
				t.Fatalf("Handle = %v, want permanent", err)
			}
		})
	}
	if n := len(r.slack.Thread("C1", r.ts)); n != 0 {
		t.Fatalf("%d thread replies from bad events", n)
	}
}
