package main

import (
	"context"
	"encoding/json"
	"reflect"
	"sync"
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

var dmedAt = clock.Add(-30 * time.Minute)

type rig struct {
	t       *testing.T
	db      *pgtest.DB
	slack   *slackstandin.Server
	clients *slackapi.Clients
	h       *Handler
	run     coffee.Run
}

// newRig has a run in C1 (initiator U1) closed 40 minutes ago with orders by
// U2 and U3, U2 the runner, DMed 30 minutes ago and now due a reminder
// (claimed as run-tick does).
func newRig(t *testing.T) *rig {
	t.Helper()
	ctx := context.Background()
	db := pgtest.New(t)
	sl, clients := functest.Slack(t)
	r := &rig{t: t, db: db, slack: sl, clients: clients, h: New(store.New(db.Pool), clients, func() time.Time { return clock })}
	start := clock.Add(-50 * time.Minute)
	r.run = functest.StartRun(t, db.Pool, store.NewRun{TeamID: "T1", ChannelID: "C1", InitiatorUserID: "U1",
		LastCallAt: start.Add(10 * time.Minute), CreatedAt: start})
	r.tx(func(tx pgx.Tx) (err error) {
		for _, o := range []coffee.Order{
			{UserID: "U2", Drink: "latte", Size: "large", Customizations: "<!channel> oat"},
			{UserID: "U3", Drink: "espresso", Size: "small"},
		} {
			if _, _, err := store.PlaceOrder(ctx, tx, "T1", "C1", o, start); err != nil {
				return err
			}
		}
		if _, _, err := store.CloseRun(ctx, tx, r.run.ID, start.Add(10*time.Minute)); err != nil {
			return err
		}
		if err := store.MarkRunnerDMed(ctx, tx, r.run.ID, dmedAt); err != nil {
			return err
		}
		due, err := store.ClaimReminders(ctx, tx, clock, 20*time.Minute, 3)
		if len(due) != 1 {
			t.Fatalf("%d runs due a reminder, want 1", len(due))
		}
		return err
	})
	return r
}

func (r *rig) tx(fn func(tx pgx.Tx) error) {
	r.t.Helper()
	functest.Tx(r.t, r.db.Pool, fn)
}

func (r *rig) due(id string) event.Event {
	return functest.Event(id, events.TypeReminderDue, "/coffeebuddy/run-tick", events.RunFact{RunID: r.run.ID.String()})
}

func (r *rig) handle(e event.Event) {
	r.t.Helper()
	if _, err := r.h.Handle(context.Background(), e); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rig) current() coffee.Run {
	r.t.Helper()
	run, err := store.GetRun(context.Background(), r.db.Pool, r.run.ID)
	if err != nil {
		r.t.Fatal(err)
	}
	return run
}

func (r *rig) count(sql string, args ...any) int {
	r.t.Helper()
	return functest.Count(r.t, r.db.Pool, sql, args...)
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

func TestRemindsTheRunnerOnce(t *testing.T) {
	r := newRig(t)
	r.handle(r.due("ce-1"))
	r.handle(r.due("ce-1")) // redelivery
	dms := r.slack.Messages(r.slack.DMChannel("U2"))
	if len(dms) != 1 {
		t.Fatalf("%d reminder DMs, want 1", len(dms))
	}
	run := r.current()
	orders, err := store.RunOrders(context.Background(), r.db.Pool, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := blocks.RunnerReminder(run, orders)
	if dms[0].Text != want.Text || !sameJSON(t, dms[0].Blocks, want.Blocks) {
		t.Fatalf("reminder DM = %q %s", dms[0].Text, dms[0].Blocks)
	}
	if !run.ReminderSentAt.Equal(clock) || run.ReminderCount != 1 {
		t.Fatalf("reminder_sent_at %v count %d, want %v 1", run.ReminderSentAt, run.ReminderCount, clock)
	}
	if n := r.count(`SELECT count(*) FROM audit_logs WHERE event_type = 'runner_reminded' AND run_id = $1
		AND ce_id = 'ce-1' AND details->>'runner' = 'U2'`, run.ID); n != 1 {
		t.Fatalf("%d runner_reminded audit rows, want 1", n)
	}
}

// A crash between Slack accepting the reminder and our commit: the retry
// sends nothing, yet records the reminder once.
func TestReminderAlreadySentUnderItsKey(t *testing.T) {
	for _, crash := range slackoncetest.Crashes {
		t.Run(crash.String(), func(t *testing.T) {
			r := newRig(t)
			ts := slackoncetest.Posted(t, r.db.Pool, r.clients, crash, "runner-remind:"+r.run.ID.String()+":1",
				r.slack.DMChannel("U2"), "", blocks.Message{Text: "reminder"})
			r.handle(r.due("ce-1"))
			r.handle(r.due("ce-1"))
			if dms := r.slack.Messages(r.slack.DMChannel("U2")); len(dms) != 1 || dms[0].TS != ts {
				t.Fatalf("DMs = %+v, want only %s", dms, ts)
			}
			if run := r.current(); !run.ReminderSentAt.Equal(clock) {
				t.Fatalf("reminder_sent_at = %v, want %v", run.ReminderSentAt, clock)
			}
			if n := r.count(`SELECT count(*) FROM audit_logs WHERE event_type = 'runner_reminded' AND ce_id = 'ce-1'`); n != 1 {
				t.Fatalf("%d runner_reminded rows, want 1", n)
			}
		})
	}
}

// Two copies of one reminder_due run at once: while the first copy's DM is
// in flight, the runner completes the run and the second copy runs to the
// end, finds the run done, DMs nobody and marks the event processed. The
// first copy's reminder must still be recorded, once.
func TestReminderRecordedWhenAConcurrentCopyFinishedFirst(t *testing.T) {
	r := newRig(t)
	e := r.due("ce-1")
	var once sync.Once
	r.slack.SetFault("chat.postMessage", func(slackstandin.Call) (int, time.Duration, bool) {
		once.Do(func() {
			r.tx(func(tx pgx.Tx) error {
				_, err := store.CompleteRun(context.Background(), tx, r.run.ID, "U2", clock)
				return err
			})
			if _, err := r.h.Handle(context.Background(), e); err != nil {
				t.Errorf("second copy: %v", err)
			}
		})
		return 0, 0, false
	})
	r.handle(e)
	if n := len(r.slack.Messages(r.slack.DMChannel("U2"))); n != 1 {
		t.Fatalf("%d reminder DMs, want 1", n)
	}
	if n := r.count(`SELECT count(*) FROM audit_logs WHERE event_type = 'runner_reminded' AND ce_id = 'ce-1'
		AND details->>'reminder' = '1'`); n != 1 {
		t.Fatalf("%d runner_reminded rows, want 1", n)
	}
	if run := r.current(); !run.ReminderSentAt.Equal(clock) {
		t.Fatalf("reminder_sent_at = %v, want %v", run.ReminderSentAt, clock)
	}
	r.handle(e)
	if n := r.count(`SELECT count(*) FROM audit_logs WHERE event_type = 'runner_reminded'`); n != 1 {
		t.Fatalf("%d runner_reminded rows after a redelivery, want 1", n)
	}
}

// Each reminder run-tick counts is its own DM.
func TestNextReminderIsANewDM(t *testing.T) {
	r := newRig(t)
	r.handle(r.due("ce-1"))
	r.tx(func(tx pgx.Tx) error {
		due, err := store.ClaimReminders(context.Background(), tx, clock.Add(30*time.Minute), 20*time.Minute, 3)
		if len(due) != 1 || due[0].ReminderCount != 2 {
			t.Fatalf("second claim = %+v", due)
		}
		return err
	})
	r.handle(r.due("ce-2"))
	if n := len(r.slack.Messages(r.slack.DMChannel("U2"))); n != 2 {
		t.Fatalf("%d DMs after two reminders, want 2", n)
	}
}

func TestNoReminderOnceTheRunIsDone(t *testing.T) {
	for name, finish := range map[string]func(tx pgx.Tx, id uuid.UUID) error{
		"completed": func(tx pgx.Tx, id uuid.UUID) error {
			_, err := store.CompleteRun(context.Background(), tx, id, "U2", clock.Add(-time.Minute))
			return err
		},
		"cancelled": func(tx pgx.Tx, _ uuid.UUID) error {
			_, err := store.CancelRun(context.Background(), tx, "T1", "C1", "U1", "", clock.Add(-time.Minute))
			return err
		},
	} {
		t.Run(name, func(t *testing.T) {
			r := newRig(t)
			r.tx(func(tx pgx.Tx) error { return finish(tx, r.run.ID) })
			r.handle(r.due("ce-1"))
			if n := len(r.slack.Calls("conversations.open")) + len(r.slack.Calls("chat.postMessage")); n != 0 {
				t.Fatalf("%d Slack calls for a %s run", n, name)
			}
			if run := r.current(); !run.ReminderSentAt.Equal(dmedAt) {
				t.Fatalf("reminder_sent_at moved to %v", run.ReminderSentAt)
			}
			if n := r.count(`SELECT count(*) FROM audit_logs WHERE event_type = 'runner_reminded'`); n != 0 {
				t.Fatalf("%d runner_reminded rows", n)
			}
			if n := r.count(`SELECT count(*) FROM processed_events WHERE consumer = 'runner-remind'`); n != 1 {
				t.Fatalf("event not acknowledged as processed")
			}
		})
	}
}

func TestSlackFailureIsRetried(t *testing.T) {
	r := newRig(t)
	r.slack.SetFault("conversations.open", slackstandin.FailN(1, 429, time.Second))
	if _, err := r.h.Handle(context.Background(), r.due("ce-1")); err == nil || function.IsPermanent(err) {
		t.Fatalf("Handle = %v, want a retryable error", err)
	}
	if run := r.current(); !run.ReminderSentAt.Equal(dmedAt) {
		t.Fatal("reminder_sent_at moved without a DM")
	}
	r.handle(r.due("ce-1"))
	if n := len(r.slack.Messages(r.slack.DMChannel("U2"))); n != 1 {
		t.Fatalf("%d DMs, want 1", n)
	}
}

func TestBadEventsArePermanent(t *testing.T) {
	r := newRig(t)
	notJSON := r.due("ce-x")
	_ = notJSON.SetData(event.ApplicationJSON, []byte("{nope"))
	badID := r.due("ce-y")
	_ = badID.SetData(event.ApplicationJSON, events.RunFact{RunID: "nope"})
	unknown := r.due("ce-z")
	_ = unknown.SetData(event.ApplicationJSON, events.RunFact{RunID: uuid.NewString()})
	for name, e := range map[string]event.Event{"undecodable": notJSON, "bad run id": badID, "unknown run": unknown} {
		t.Run(name, func(t *testing.T) {
			if _, err := r.h.Handle(context.Background(), e); !function.IsPermanent(err) {
				t.Fatalf("Handle = %v, want permanent", err)
			}
		})
	}
}
