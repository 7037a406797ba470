package main

import (
	"context"
	"fmt"
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

var (
	clock    = time.Date(2026, 11, 21, 9, 30, 0, 0, time.UTC)
	lastCall = clock.Add(90 * time.Second)
)

type rig struct {
	t       *testing.T
	db      *pgtest.DB
	slack   *slackstandin.Server
	clients *slackapi.Clients
	h       *Handler
	run     coffee.Run
}

func newRig(t *testing.T) *rig {
	t.Helper()
	db := pgtest.New(t)
	sl, clients := functest.Slack(t)
	r := &rig{t: t, db: db, slack: sl, clients: clients, h: New(store.New(db.Pool), clients, func() time.Time { return clock })}
	r.run = functest.StartRun(t, db.Pool, store.NewRun{
		TeamID: "T1", ChannelID: "C1", InitiatorUserID: "U1", LastCallAt: lastCall, CreatedAt: clock.Add(-8 * time.Minute),
	})
	return r
}

func (r *rig) tx(fn func(pgx.Tx) error) {
	r.t.Helper()
	functest.Tx(r.t, r.db.Pool, fn)
}

// announce posts a run message (as run-announce would) and records its ts.
func (r *rig) announce() string {
	r.t.Helper()
	return functest.Announce(r.t, r.db.Pool, r.clients, r.run)
}

func (r *rig) warning(id string) event.Event {
	return functest.Event(id, events.TypeLastCallSoon, "/coffeebuddy/run-tick", events.RunFact{RunID: r.run.ID.String()})
}

func (r *rig) processed() int {
	return functest.Count(r.t, r.db.Pool, `SELECT count(*) FROM processed_events WHERE consumer = 'warn-notify'`)
}

func TestWarnsInTheThreadOnce(t *testing.T) {
	r := newRig(t)
	ts := r.announce()
	ctx := context.Background()
	for _, id := range []string{"ce-1", "ce-1"} { // the second is a redelivery
		if _, err := r.h.Handle(ctx, r.warning(id)); err != nil {
			t.Fatal(err)
		}
	}
	thread := r.slack.Thread("C1", ts)
	if len(thread) != 1 {
		t.Fatalf("%d thread replies, want 1", len(thread))
	}
	want := fmt.Sprintf(":alarm_clock: Last call <!date^%d^{time}|09:31 UTC>! Get your orders in.", lastCall.Unix())
	if thread[0].Text != want {
		t.Fatalf("warning %q, want %q", thread[0].Text, want)
	}
	if len(thread[0].Blocks) == 0 {
		t.Fatal("warning has no blocks")
	}
	if n := len(r.slack.Calls("chat.postMessage")); n != 2 { // run message + warning
		t.Fatalf("%d chat.postMessage calls, want 2", n)
	}
	if n := r.processed(); n != 1 {
		t.Fatalf("%d processed events, want 1", n)
	}
}

func TestWaitsForTheAnnouncement(t *testing.T) {
	r := newRig(t)
	_, err := r.h.Handle(context.Background(), r.warning("ce-1"))
	if err == nil || function.IsPermanent(err) {
		t.Fatalf("Handle before the run message exists = %v, want a retryable error", err)
	}
	if n := len(r.slack.Calls("chat.postMessage")); n != 0 || r.processed() != 0 {
		t.Fatalf("%d posts, %d processed before the announcement", n, r.processed())
	}
	ts := r.announce()
	if _, err := r.h.Handle(context.Background(), r.warning("ce-1")); err != nil {
		t.Fatal(err)
	}
	if n := len(r.slack.Thread("C1", ts)); n != 1 {
		t.Fatalf("%d thread replies after the retry, want 1", n)
	}
}

func TestSlackFailureIsRetriedNotLost(t *testing.T) {
	r := newRig(t)
	ts := r.announce()
	r.slack.SetFault("chat.postMessage", slackstandin.FailN(1, 500, 0))
	_, err := r.h.Handle(context.Background(), r.warning("ce-1"))
	if err == nil || function.IsPermanent(err) {
		t.Fatalf("Handle = %v, want a retryable error", err)
	}
	if r.processed() != 0 {
		t.Fatal("a failed post was recorded as processed")
	}
	if _, err := r.h.Handle(context.Background(), r.warning("ce-1")); err != nil {
		t.Fatal(err)
	}
	if n := len(r.slack.Thread("C1", ts)); n != 1 {
		t.Fatalf("%d thread replies, want 1", n)
	}
}

// A crash between Slack accepting the warning and our commit: the retry
// posts nothing and marks the event processed.
func TestWarningAlreadyPostedUnderItsKey(t *testing.T) {
	for _, crash := range slackoncetest.Crashes {
		t.Run(crash.String(), func(t *testing.T) {
			r := newRig(t)
			parent := r.announce()
			ts := slackoncetest.Posted(t, r.db.Pool, r.clients, crash, "warning:"+r.run.ID.String(), "C1", parent,
				blocks.Message{Text: "last call"})
			if _, err := r.h.Handle(context.Background(), r.warning("ce-1")); err != nil {
				t.Fatal(err)
			}
			if thread := r.slack.Thread("C1", parent); len(thread) != 1 || thread[0].TS != ts {
				t.Fatalf("thread = %+v, want only %s", thread, ts)
			}
			if n := r.processed(); n != 1 {
				t.Fatalf("%d processed events, want 1", n)
			}
		})
	}
}

func TestStaleWarningsAreDropped(t *testing.T) {
	tests := map[string]func(r *rig){
		"run closed early": func(r *rig) {
			r.tx(func(tx pgx.Tx) error {
				_, _, err := store.CloseRun(context.Background(), tx, r.run.ID, clock)
				return err
			})
		},
		"run cancelled": func(r *rig) {
			r.tx(func(tx pgx.Tx) error {
				_, err := store.CancelRun(context.Background(), tx, "T1", "C1", "U1", "", clock)
				return err
			})
		},
		"last call passed": func(r *rig) {
			r.h.now = func() time.Time { return lastCall }
		},
	}
	for name, setup := range tests {
		t.Run(name, func(t *testing.T) {
			r := newRig(t)
			ts := r.announce()
			setup(r)
			if _, err := r.h.Handle(context.Background(), r.warning("ce-1")); err != nil {
				t.Fatal(err)
			}
			if n := len(r.slack.Thread("C1", ts)); n != 0 {
				t.Fatalf("%d thread replies for a stale warning", n)
			}
		})
	}
}

func TestBadEventsArePermanent(t *testing.T) {
	r := newRig(t)
	notJSON := r.warning("ce-x")
	_ = notJSON.SetData(event.ApplicationJSON, []byte("{nope"))
	badID := r.warning("ce-y")
	_ = badID.SetData(event.ApplicationJSON, events.RunFact{RunID: "not-a-uuid"})
	unknown := r.warning("ce-z")
	_ = unknown.SetData(event.ApplicationJSON, events.RunFact{RunID: uuid.NewString()})
	for name, e := range map[string]event.Event{"undecodable": notJSON, "bad run id": badID, "unknown run": unknown} {
		if _, err := r.h.Handle(context.Background(), e); !function.IsPermanent(err) {
			t.Errorf("%s: Handle = %v, want permanent", name, err)
		}
	}
}
