package main

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/coffeebuddy/coffeebuddy/shared/coffee"
	"github.com/coffeebuddy/coffeebuddy/shared/events"
	"github.com/coffeebuddy/coffeebuddy/shared/functest"
	"github.com/coffeebuddy/coffeebuddy/shared/function"
	"github.com/coffeebuddy/coffeebuddy/shared/kafka"
	"github.com/coffeebuddy/coffeebuddy/shared/kafka/kafkatest"
	"github.com/coffeebuddy/coffeebuddy/shared/outbox"
	"github.com/coffeebuddy/coffeebuddy/shared/postgres/pgtest"
	"github.com/coffeebuddy/coffeebuddy/shared/store"
	"github.com/coffeebuddy/coffeebuddy/shared/timers"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

var timing = timers.Timing{WarnBefore: 400 * time.Millisecond, RemindAfter: 300 * time.Millisecond}

type rig struct {
	t        *testing.T
	db       *pgtest.DB
	kc       *kafkatest.Cluster
	cl       *kgo.Client
	stopping chan struct{}
	h        *Handler
}

// newRig runs the handler on the real clock: it holds real timers.
func newRig(t *testing.T) *rig {
	t.Helper()
	db, kc := pgtest.New(t), kafkatest.New(t)
	cl := functest.Producer(t, kc)
	relay := outbox.NewRelay(db.Pool, cl, slog.New(slog.DiscardHandler))
	s := store.New(db.Pool)
	r := &rig{t: t, db: db, kc: kc, cl: cl, stopping: make(chan struct{})}
	r.h = New(s, timers.New(s, relay, nil, timing, "run-timer"), cl, r.stopping, time.Now)
	return r
}

// start creates an active run in C1 whose last call is lastCall away, with
// orders by the given users.
func (r *rig) start(lastCall time.Duration, orderers ...string) uuid.UUID {
	r.t.Helper()
	ctx := context.Background()
	now := time.Now()
	run := functest.StartRun(r.t, r.db.Pool, store.NewRun{TeamID: "T1", ChannelID: "C1", InitiatorUserID: "U1",
		LastCallAt: now.Add(lastCall), CreatedAt: now.Add(-time.Minute)})
	for _, u := range orderers {
		functest.Tx(r.t, r.db.Pool, func(tx pgx.Tx) error {
			_, _, err := store.PlaceOrder(ctx, tx, "T1", "C1", coffee.Order{UserID: u, Drink: "latte", Size: "small"}, now.Add(-time.Minute))
			return err
		})
	}
	return run.ID
}

func (r *rig) timer(id string, run uuid.UUID, kind string) event.Event {
	return functest.Event(id, events.TypeRunTimer, "/coffeebuddy/run-start", events.RunTimer{RunID: run.String(), Kind: kind})
}

func (r *rig) handle(e event.Event) {
	r.t.Helper()
	if _, err := r.h.Handle(context.Background(), e); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rig) run(id uuid.UUID) coffee.Run {
	r.t.Helper()
	run, err := store.GetRun(context.Background(), r.db.Pool, id)
	if err != nil {
		r.t.Fatal(err)
	}
	return run
}

func (r *rig) count(sql string, args ...any) int {
	r.t.Helper()
	return functest.Count(r.t, r.db.Pool, sql, args...)
}

// TestLastCallClosesOnTime: the timer holds until last call, then closes
// the run and assigns its runner, once, however many timers or ticks
// reach it.
func TestLastCallClosesOnTime(t *testing.T) {
	r := newRig(t)
	id := r.start(300*time.Millisecond, "U2", "U3")
	r.handle(r.timer("ce-1", id, timers.LastCall))
	run := r.run(id)
	if run.Status != coffee.StatusClosed || run.RunnerUserID != "U2" {
		t.Fatalf("run %s, runner %q; want closed with U2", run.Status, run.RunnerUserID)
	}
	if run.ClosedAt.Before(run.LastCallAt) {
		t.Fatalf("closed at %v, before last call %v", run.ClosedAt, run.LastCallAt)
	}
	// A second timer (a redelivery, another hop) and the tick change nothing.
	r.handle(r.timer("ce-1", id, timers.LastCall))
	r.handle(r.timer("ce-2", id, timers.LastCall))
	tick := timers.New(store.New(r.db.Pool), outbox.NewRelay(r.db.Pool, r.cl, slog.New(slog.DiscardHandler)), nil, timing, "run-tick")
	if res, err := tick.Tick(context.Background(), slog.New(slog.DiscardHandler), "tick-1", time.Now()); err != nil || res.Closed != 0 {
		t.Fatalf("tick after the timer: %+v, %v; want nothing closed", res, err)
	}
	if n := r.count(`SELECT count(*) FROM audit_logs WHERE event_type = 'run_closed' AND run_id = $1`, id); n != 1 {
		t.Fatalf("%d run_closed audit rows, want 1", n)
	}
	if n := r.count(`SELECT count(*) FROM outbox WHERE ce_type = $1 AND published_at IS NOT NULL`, events.TypeRunClosed); n != 1 {
		t.Fatalf("%d published run.closed, want 1", n)
	}
}

// TestWarningAndReminderOnTime: the warning comes WarnBefore ahead of last
// call; the reminder RemindAfter after the runner's DM.
func TestWarningAndReminderOnTime(t *testing.T) {
	r := newRig(t)
	id := r.start(timing.WarnBefore+300*time.Millisecond, "U2")
	r.handle(r.timer("ce-w", id, timers.Warn))
	run := r.run(id)
	if run.LastCallWarnedAt.IsZero() || run.LastCallWarnedAt.Before(run.LastCallAt.Add(-timing.WarnBefore)) {
		t.Fatalf("warned at %v; the warning falls at %v", run.LastCallWarnedAt, run.LastCallAt.Add(-timing.WarnBefore))
	}
	if run.Status != coffee.StatusActive {
		t.Fatal("the warning closed the run")
	}
	r.handle(r.timer("ce-l", id, timers.LastCall))
	dmAt := time.Now()
	if _, err := r.db.Pool.Exec(context.Background(), `UPDATE coffee_runs SET reminder_sent_at = $2 WHERE id = $1`, id, dmAt); err != nil {
		t.Fatal(err)
	}
	r.handle(r.timer("ce-r", id, timers.Remind))
	if time.Since(dmAt) < timing.RemindAfter {
		t.Fatalf("reminded %v after the DM, before RemindAfter (%v)", time.Since(dmAt), timing.RemindAfter)
	}
	if n := r.count(`SELECT count(*) FROM audit_logs WHERE event_type = 'reminder_due' AND run_id = $1`, id); n != 1 {
		t.Fatalf("%d reminder_due rows, want 1", n)
	}
	r.handle(r.timer("ce-r2", id, timers.Remind)) // reminders used up: nothing
	for _, typ := range []string{events.TypeLastCallSoon, events.TypeReminderDue} {
		if n := r.count(`SELECT count(*) FROM outbox WHERE ce_type = $1`, typ); n != 1 {
			t.Fatalf("%d %s facts, want 1", n, typ)
		}
	}
}

// TestFarTimerIsPassedOn: a moment beyond the hold is produced again to
// coffee.timers (same id, keyed by run, one hop further) and the run left
// alone.
func TestFarTimerIsPassedOn(t *testing.T) {
	r := newRig(t)
	r.h.maxHold = 50 * time.Millisecond
	id := r.start(time.Hour)
	r.handle(r.timer("ce-1", id, timers.LastCall))
	recs := r.kc.Consume(t, events.TopicTimers, 1, 5*time.Second)
	ev, err := kafka.Event(recs[0])
	if err != nil {
		t.Fatal(err)
	}
	var rt events.RunTimer
	if err := ev.DataAs(&rt); err != nil || ev.ID() != "ce-1" || rt.Hop != 1 || rt.Kind != timers.LastCall ||
		string(recs[0].Key) != id.String() {
		t.Fatalf("passed on %s %+v key %s (%v)", ev.ID(), rt, recs[0].Key, err)
	}
	if run := r.run(id); run.Status != coffee.StatusActive {
		t.Fatalf("run %s, want still active", run.Status)
	}
}

// TestStoppingPassesOn: SIGTERM while holding hands the timer back to
// Kafka at once instead of keeping the process alive.
func TestStoppingPassesOn(t *testing.T) {
	r := newRig(t)
	id := r.start(30 * time.Second)
	done := make(chan error, 1)
	go func() {
		_, err := r.h.Handle(context.Background(), r.timer("ce-1", id, timers.LastCall))
		done <- err
	}()
	close(r.stopping)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("still holding 10 s after stopping")
	}
	if recs := r.kc.Consume(t, events.TopicTimers, 1, 5*time.Second); len(recs) != 1 {
		t.Fatalf("%d timers passed on, want 1", len(recs))
	}
}

// TestCancelledRequestIsRetried: when the dispatcher gives up on a
// delivery, the timer is not passed on (the broker redelivers it), so no
// second copy circulates.
func TestCancelledRequestIsRetried(t *testing.T) {
	r := newRig(t)
	id := r.start(30 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := r.h.Handle(ctx, r.timer("ce-1", id, timers.LastCall)); err == nil || function.IsPermanent(err) {
		t.Fatalf("Handle = %v, want a retryable error", err)
	}
	if n := r.count(`SELECT count(*) FROM coffee_runs WHERE status = 'active'`); n != 1 {
		t.Fatal("the run changed")
	}
}

// TestNothingLeftToDo: a run that moved on needs no timer.
func TestNothingLeftToDo(t *testing.T) {
	r := newRig(t)
	id := r.start(time.Hour)
	if _, err := r.db.Pool.Exec(context.Background(), `UPDATE coffee_runs SET status = 'cancelled' WHERE id = $1`, id); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for _, k := range timers.Kinds {
		r.handle(r.timer("ce-"+k, id, k))
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("took %v: a timer of a cancelled run was held", took)
	}
	if n := r.count(`SELECT count(*) FROM outbox`); n != 0 {
		t.Fatalf("%d outbox rows for a cancelled run", n)
	}
}

func TestBadTimersArePermanent(t *testing.T) {
	r := newRig(t)
	notJSON := r.timer("ce-x", uuid.New(), timers.LastCall)
	_ = notJSON.SetData(event.ApplicationJSON, []byte("{nope"))
	for name, e := range map[string]event.Event{
		"undecodable":  notJSON,
		"bad run id":   functest.Event("ce-y", events.TypeRunTimer, "/t", events.RunTimer{RunID: "nope", Kind: timers.LastCall}),
		"unknown kind": r.timer("ce-z", r.start(time.Hour), "lunch"),
		"unknown run":  r.timer("ce-u", uuid.New(), timers.Warn),
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := r.h.Handle(context.Background(), e); !function.IsPermanent(err) {
				t.Fatalf("Handle = %v, want permanent", err)
			}
		})
	}
}
