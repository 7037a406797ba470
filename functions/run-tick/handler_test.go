package main

import (
	"context"
	"encoding/json"
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
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

var (
	clock  = time.Date(2026, 11, 21, 9, 30, 0, 0, time.UTC)
	timing = Timing{WarnBefore: 2 * time.Minute, RemindAfter: 20 * time.Minute}
)

type rig struct {
	t  *testing.T
	db *pgtest.DB
	kc *kafkatest.Cluster
	cl *kgo.Client
}

func newRig(t *testing.T) *rig {
	t.Helper()
	db, kc := pgtest.New(t), kafkatest.New(t)
	cl := functest.Producer(t, kc)
	return &rig{t: t, db: db, kc: kc, cl: cl}
}

// handler is a fresh instance, as a new pod after scale-to-zero would have:
// nothing carries over but the database.
func (r *rig) handler(now time.Time) *Handler {
	relay := outbox.NewRelay(r.db.Pool, r.cl, slog.New(slog.DiscardHandler))
	return New(store.New(r.db.Pool), relay, nil, timing, func() time.Time { return now })
}

func (r *rig) tick(h *Handler, id string, now time.Time) Result {
	r.t.Helper()
	res, err := h.Tick(context.Background(), id, now)
	if err != nil {
		r.t.Fatal(err)
	}
	return res
}

// start creates an active run in channel whose last call is at lastCall.
func (r *rig) start(channel, initiator string, lastCall time.Time) uuid.UUID {
	r.t.Helper()
	var id uuid.UUID
	r.tx(func(tx pgx.Tx) error {
		run, err := store.CreateRun(context.Background(), tx, store.NewRun{TeamID: "T1", ChannelID: channel,
			InitiatorUserID: initiator, LastCallAt: lastCall, CreatedAt: clock.Add(-10 * time.Minute)})
		id = run.ID
		return err
	})
	return id
}

func (r *rig) order(channel, user string) {
	r.t.Helper()
	r.tx(func(tx pgx.Tx) error {
		_, _, err := store.PlaceOrder(context.Background(), tx, "T1", channel,
			coffee.Order{UserID: user, Drink: "latte", Size: "large"}, clock.Add(-5*time.Minute))
		return err
	})
}

func (r *rig) tx(fn func(pgx.Tx) error) {
	r.t.Helper()
	functest.Tx(r.t, r.db.Pool, fn)
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

// facts counts the outbox rows of type about run, and how many were
// published.
func (r *rig) facts(ceType string, run uuid.UUID) (all, published int) {
	r.t.Helper()
	err := r.db.Pool.QueryRow(context.Background(), `SELECT count(*), count(published_at) FROM outbox
		WHERE ce_type = $1 AND partition_key = $2`, ceType, run.String()).Scan(&all, &published)
	if err != nil {
		r.t.Fatal(err)
	}
	return all, published
}

func (r *rig) audits(eventType string, run uuid.UUID) int {
	return r.count(`SELECT count(*) FROM audit_logs WHERE event_type = $1 AND run_id = $2`, eventType, run)
}

func ping(id string) event.Event {
	return functest.Event(id, events.TypePing, "/apis/v1/namespaces/coffeebuddy/pingsources/run-tick", map[string]string{"job": "run-tick"})
}

func TestTickWarnsOnceBeforeLastCall(t *testing.T) {
	r := newRig(t)
	soon := r.start("C1", "U1", clock.Add(90*time.Second))
	h := r.handler(clock)
	if res := r.tick(h, "tick-1", clock); res != (Result{Warned: 1}) {
		t.Fatalf("first tick: %+v, want one warning", res)
	}
	// A second tick (and an overlapping one at the same instant) warns nobody again.
	for i, id := range []string{"tick-2", "tick-1"} {
		if res := r.tick(h, id, clock.Add(time.Duration(i)*30*time.Second)); res != (Result{}) {
			t.Fatalf("tick %s: %+v, want nothing", id, res)
		}
	}
	run := r.run(soon)
	if run.Status != coffee.StatusActive || !run.LastCallWarnedAt.Equal(clock) {
		t.Fatalf("run %s warned at %v, want active and warned at %v", run.Status, run.LastCallWarnedAt, clock)
	}
	if n := r.audits("last_call_warned", soon); n != 1 {
		t.Fatalf("%d last_call_warned audit rows, want 1", n)
	}
	if all, pub := r.facts(events.TypeLastCallSoon, soon); all != 1 || pub != 1 {
		t.Fatalf("last_call_soon outbox rows: %d (%d published), want 1 published", all, pub)
	}
	recs := r.kc.Consume(t, events.TopicOrders, 1, 5*time.Second)
	if len(recs) != 1 || string(recs[0].Key) != soon.String() {
		t.Fatalf("%d records on %s, want the warning keyed by the run", len(recs), events.TopicOrders)
	}
	ev, err := kafka.Event(recs[0])
	if err != nil {
		t.Fatal(err)
	}
	var fact events.RunFact
	if err := ev.DataAs(&fact); err != nil || ev.Type() != events.TypeLastCallSoon || fact.RunID != soon.String() {
		t.Fatalf("record %s %+v (%v)", ev.Type(), fact, err)
	}
}

func TestTickLeavesRunsBeforeTheirTime(t *testing.T) {
	r := newRig(t)
	later := r.start("C1", "U1", clock.Add(10*time.Minute))
	r.order("C1", "U2")
	// A run already closed, assigned and DMed just now: no reminder yet.
	closed := r.start("C2", "U1", clock.Add(-time.Minute))
	r.order2("C2", "U3", clock.Add(-3*time.Minute))
	if res := r.tick(r.handler(clock), "tick-0", clock.Add(-30*time.Second)); res.Closed != 1 {
		t.Fatalf("setup tick: %+v", res)
	}
	if err := store.MarkRunnerDMed(context.Background(), r.db.Pool, closed, clock); err != nil {
		t.Fatal(err)
	}
	if res := r.tick(r.handler(clock), "tick-1", clock); res != (Result{}) {
		t.Fatalf("tick: %+v, want nothing", res)
	}
	run := r.run(later)
	if run.Status != coffee.StatusActive || !run.LastCallWarnedAt.IsZero() || run.RunnerUserID != "" {
		t.Fatalf("run touched early: %+v", run)
	}
	if n := r.count(`SELECT count(*) FROM audit_logs WHERE run_id = $1`, later); n != 0 {
		t.Fatalf("%d audit rows for a run not due", n)
	}
	if n := r.count(`SELECT count(*) FROM outbox WHERE partition_key = $1`, later.String()); n != 0 {
		t.Fatalf("%d outbox rows for a run not due", n)
	}
	if c := r.run(closed); c.ReminderCount != 0 {
		t.Fatalf("runner reminded right after the DM: %+v", c)
	}
}

// order2 places an order at a given time (before last call).
func (r *rig) order2(channel, user string, at time.Time) {
	r.t.Helper()
	r.tx(func(tx pgx.Tx) error {
		_, _, err := store.PlaceOrder(context.Background(), tx, "T1", channel,
			coffee.Order{UserID: user, Drink: "mocha", Size: "small"}, at)
		return err
	})
}

func TestTickClosesDueRuns(t *testing.T) {
	r := newRig(t)
	withOrders := r.start("C1", "U1", clock.Add(-time.Second))
	r.order("C1", "U1")
	r.order("C1", "U2")
	empty := r.start("C2", "U3", clock)
	notYet := r.start("C3", "U4", clock.Add(time.Second))
	h := r.handler(clock)
	if res := r.tick(h, "tick-1", clock); res.Closed != 2 {
		t.Fatalf("tick: %+v, want 2 closed", res)
	}
	run := r.run(withOrders)
	if run.Status != coffee.StatusClosed || run.RunnerUserID == "" || !run.ClosedAt.Equal(clock) || run.AssignmentReason == "" {
		t.Fatalf("run with orders: %+v, want closed with a runner", run)
	}
	if run.RunnerUserID != "U1" && run.RunnerUserID != "U2" {
		t.Fatalf("runner %s did not order", run.RunnerUserID)
	}
	e := r.run(empty)
	if e.Status != coffee.StatusClosed || e.RunnerUserID != "" {
		t.Fatalf("empty run: %+v, want closed without a runner", e)
	}
	if n := r.run(notYet); n.Status != coffee.StatusActive {
		t.Fatalf("run not yet due: %s", n.Status)
	}
	for id, runner := range map[uuid.UUID]string{withOrders: run.RunnerUserID, empty: ""} {
		if n := r.count(`SELECT count(*) FROM audit_logs WHERE event_type = 'run_closed' AND run_id = $1
			AND details->>'closed_by' = 'last_call' AND actor_user_id IS NULL`, id); n != 1 {
			t.Fatalf("%d run_closed audit rows for %s, want 1", n, id)
		}
		var data []byte
		if err := r.db.Pool.QueryRow(context.Background(), `SELECT data FROM outbox WHERE ce_type = $1 AND partition_key = $2
			AND published_at IS NOT NULL AND ce_source = '/coffeebuddy/run-tick'`, events.TypeRunClosed, id.String()).Scan(&data); err != nil {
			t.Fatalf("run.closed for %s: %v", id, err)
		}
		var rc events.RunClosed
		if err := json.Unmarshal(data, &rc); err != nil || rc.RunnerUserID != runner || rc.ClosedBy != "last_call" {
			t.Fatalf("run.closed %+v (%v), want runner %q closed by last_call", rc, err, runner)
		}
	}
	// The same tick redelivered, and the next tick, close nothing more.
	for _, id := range []string{"tick-1", "tick-2"} {
		if res := r.tick(h, id, clock.Add(time.Millisecond)); res.Closed != 0 {
			t.Fatalf("%s closed %d again", id, res.Closed)
		}
	}
	if n := r.count(`SELECT count(*) FROM outbox WHERE ce_type = $1`, events.TypeRunClosed); n != 2 {
		t.Fatalf("%d run.closed events, want 2", n)
	}
}

func TestTickRemindsOnceAfterRemindAfter(t *testing.T) {
	r := newRig(t)
	id := r.start("C1", "U1", clock.Add(-time.Minute))
	r.order2("C1", "U2", clock.Add(-2*time.Minute))
	h := r.handler(clock)
	r.tick(h, "tick-close", clock)
	runner := r.run(id).RunnerUserID
	if runner == "" {
		t.Fatal("no runner assigned")
	}
	// Undelivered DM: nothing to remind about yet, however long it takes.
	if res := r.tick(h, "tick-0", clock.Add(time.Hour)); res.Reminded != 0 {
		t.Fatalf("reminded before the first DM: %+v", res)
	}
	if err := store.MarkRunnerDMed(context.Background(), r.db.Pool, id, clock); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		at   time.Time
		want int
	}{
		{clock.Add(timing.RemindAfter - time.Second), 0},
		{clock.Add(timing.RemindAfter), 0},
		{clock.Add(timing.RemindAfter + time.Second), 1},
		{clock.Add(timing.RemindAfter + time.Minute), 0},
		{clock.Add(3 * timing.RemindAfter), 0}, // one reminder per run
	}
	for i, s := range steps {
		if res := r.tick(h, "tick-r"+string(rune('a'+i)), s.at); res.Reminded != s.want {
			t.Fatalf("tick at %v reminded %d, want %d", s.at, res.Reminded, s.want)
		}
	}
	if run := r.run(id); run.ReminderCount != 1 || run.Status != coffee.StatusClosed {
		t.Fatalf("run after reminders: %+v", run)
	}
	if n := r.count(`SELECT count(*) FROM audit_logs WHERE event_type = 'reminder_due' AND run_id = $1
		AND details->>'runner' = $2`, id, runner); n != 1 {
		t.Fatalf("%d reminder_due audit rows, want 1", n)
	}
	if all, pub := r.facts(events.TypeReminderDue, id); all != 1 || pub != 1 {
		t.Fatalf("reminder_due outbox rows: %d (%d published), want 1 published", all, pub)
	}
	// A completed run is never reminded.
	done := r.start("C2", "U1", clock.Add(-time.Minute))
	r.order2("C2", "U3", clock.Add(-2*time.Minute))
	r.tick(h, "tick-close-2", clock)
	r.tx(func(tx pgx.Tx) error {
		_, err := store.CompleteRun(context.Background(), tx, done, "U3", clock.Add(time.Minute))
		return err
	})
	if err := store.MarkRunnerDMed(context.Background(), r.db.Pool, done, clock); err != nil {
		t.Fatal(err)
	}
	if res := r.tick(h, "tick-late", clock.Add(2*timing.RemindAfter)); res.Reminded != 0 {
		t.Fatalf("completed run reminded: %+v", res)
	}
}

// TestFreshInstancesPickUpDueWork is the restart test: the run is created
// while no tick runs, and each tick is served by a new Handler, as after a
// crash or scale-to-zero. Everything due is found in the database.
func TestFreshInstancesPickUpDueWork(t *testing.T) {
	r := newRig(t)
	lastCall := clock.Add(10 * time.Minute)
	id := r.start("C1", "U1", lastCall)
	r.order("C1", "U2")
	steps := []struct {
		at   time.Time
		want Result
	}{
		{clock, Result{}},
		{lastCall.Add(-timing.WarnBefore + time.Second), Result{Warned: 1}},
		{lastCall.Add(time.Second), Result{Closed: 1}},
	}
	for i, s := range steps {
		// Through Handle, the way the broker calls it, with the pod's clock.
		h := r.handler(s.at)
		before := r.count(`SELECT count(*) FROM audit_logs WHERE run_id = $1`, id)
		if _, err := h.Handle(context.Background(), ping("ping-"+string(rune('0'+i)))); err != nil {
			t.Fatal(err)
		}
		got := r.count(`SELECT count(*) FROM audit_logs WHERE run_id = $1`, id) - before
		if want := s.want.Warned + s.want.Closed; got != want {
			t.Fatalf("step %d at %v: %d new audit rows, want %d", i, s.at, got, want)
		}
	}
	run := r.run(id)
	if run.Status != coffee.StatusClosed || run.RunnerUserID != "U2" || run.LastCallWarnedAt.IsZero() {
		t.Fatalf("run after restarts: %+v", run)
	}
	// The runner is DMed, then every instance is replaced again: the
	// reminder still comes, once.
	if err := store.MarkRunnerDMed(context.Background(), r.db.Pool, id, lastCall.Add(2*time.Second)); err != nil {
		t.Fatal(err)
	}
	remindAt := lastCall.Add(timing.RemindAfter + time.Minute)
	for _, id := range []string{"ping-a", "ping-b"} {
		if _, err := r.handler(remindAt).Handle(context.Background(), ping(id)); err != nil {
			t.Fatal(err)
		}
	}
	if all, _ := r.facts(events.TypeReminderDue, id); all != 1 {
		t.Fatalf("%d reminders, want 1", all)
	}
}

func TestBadPingsArePermanent(t *testing.T) {
	r := newRig(t)
	notJSON := ping("p-1")
	_ = notJSON.SetData(event.ApplicationJSON, []byte("{nope"))
	otherJob := ping("p-2")
	_ = otherJob.SetData(event.ApplicationJSON, map[string]string{"job": "outbox-sweep"})
	for name, e := range map[string]event.Event{"undecodable": notJSON, "another job's ping": otherJob} {
		if _, err := r.handler(clock).Handle(context.Background(), e); !function.IsPermanent(err) {
			t.Errorf("%s: Handle = %v, want permanent", name, err)
		}
	}
}
