package closing_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/coffeebuddy/coffeebuddy/shared/closing"
	"github.com/coffeebuddy/coffeebuddy/shared/coffee"
	"github.com/coffeebuddy/coffeebuddy/shared/events"
	"github.com/coffeebuddy/coffeebuddy/shared/kafka"
	"github.com/coffeebuddy/coffeebuddy/shared/kafka/kafkatest"
	"github.com/coffeebuddy/coffeebuddy/shared/outbox"
	"github.com/coffeebuddy/coffeebuddy/shared/postgres/pgtest"
	"github.com/coffeebuddy/coffeebuddy/shared/store"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

var now = time.Date(2026, 11, 21, 9, 30, 0, 0, time.UTC)

var quiet = slog.New(slog.DiscardHandler)

type rig struct {
	t   *testing.T
	db  *pgtest.DB
	kc  *kafkatest.Cluster
	reg *prometheus.Registry
	c   *closing.Closer
}

func newRig(t *testing.T) *rig {
	t.Helper()
	db, kc := pgtest.New(t), kafkatest.New(t)
	cl, err := kafka.NewClient(kc.Brokers, quiet, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	reg := prometheus.NewRegistry()
	s := store.New(db.Pool)
	return &rig{t: t, db: db, kc: kc, reg: reg, c: closing.New(s, outbox.NewRelay(db.Pool, cl, quiet), "/coffeebuddy/test", reg)}
}

func (r *rig) tx(fn func(tx pgx.Tx) error) {
	r.t.Helper()
	if err := pgx.BeginFunc(context.Background(), r.db.Pool, fn); err != nil {
		r.t.Fatal(err)
	}
}

// run starts a run in channel at `at` with the given orderers.
func (r *rig) run(channel, initiator string, at time.Time, orderers ...string) coffee.Run {
	r.t.Helper()
	ctx := context.Background()
	var run coffee.Run
	r.tx(func(tx pgx.Tx) error {
		var err error
		run, err = store.CreateRun(ctx, tx, store.NewRun{TeamID: "T1", ChannelID: channel, InitiatorUserID: initiator,
			LastCallAt: at.Add(10 * time.Minute), CreatedAt: at})
		if err != nil {
			return err
		}
		for _, u := range orderers {
			if _, _, err := store.PlaceOrder(ctx, tx, "T1", channel,
				coffee.Order{UserID: u, Drink: "latte", Size: "large"}, at.Add(time.Minute)); err != nil {
				return err
			}
		}
		return nil
	})
	return run
}

// history gives runner one completed run three days ago.
func (r *rig) history(runner string) {
	r.t.Helper()
	ctx := context.Background()
	at := now.Add(-72 * time.Hour)
	past := r.run("C-past-"+runner, "U9", at, runner)
	r.tx(func(tx pgx.Tx) error {
		if _, _, err := store.CloseRun(ctx, tx, past.ID, at.Add(10*time.Minute)); err != nil {
			return err
		}
		_, err := store.CompleteRun(ctx, tx, past.ID, runner, at.Add(30*time.Minute))
		return err
	})
}

func (r *rig) count(sql string, args ...any) int {
	r.t.Helper()
	var n int
	if err := r.db.Pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		r.t.Fatal(err)
	}
	return n
}

func (r *rig) gauge() float64 {
	r.t.Helper()
	mfs, err := r.reg.Gather()
	if err != nil {
		r.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "coffeebuddy_runner_fairness_stddev" {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	r.t.Fatal("fairness gauge not registered")
	return 0
}

func TestCloseAssignsAuditsPublishesAndSetsTheGauge(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	r.history("U2")
	run := r.run("C1", "U1", now.Add(-10*time.Minute), "U2", "U3")

	res, err := r.c.Close(ctx, "run-close", "ce-1", run.ID, "U1", now, quiet)
	if err != nil {
		t.Fatal(err)
	}
	want := "0 runs in the last 30 days; team median 0.5"
	if !res.Closed || res.Run.Status != coffee.StatusClosed || res.Assignment.RunnerUserID != "U3" || res.Assignment.Reason != want {
		t.Fatalf("Close = %+v", res)
	}
	var status, runner, reason string
	var closedAt time.Time
	if err := r.db.Pool.QueryRow(ctx, `SELECT status, runner_user_id, assignment_reason, closed_at FROM coffee_runs WHERE id = $1`,
		run.ID).Scan(&status, &runner, &reason, &closedAt); err != nil {
		t.Fatal(err)
	}
	if status != "closed" || runner != "U3" || reason != want || !closedAt.Equal(now) {
		t.Fatalf("run row = %s %s %q %v", status, runner, reason, closedAt)
	}
	var details map[string]any
	if err := r.db.Pool.QueryRow(ctx, `SELECT details FROM audit_logs
		WHERE event_type = 'run_closed' AND run_id = $1 AND actor_user_id = 'U1' AND ce_id = 'ce-1'`, run.ID).Scan(&details); err != nil {
		t.Fatalf("run_closed audit row: %v", err)
	}
	if details["runner"] != "U3" || details["closed_by"] != "U1" || details["reason"] != want {
		t.Fatalf("audit details = %v", details)
	}
	if n := r.count(`SELECT count(*) FROM outbox WHERE ce_type = $1 AND ce_subject = $2 AND published_at IS NOT NULL`,
		events.TypeRunClosed, run.ID.String()); n != 1 {
		t.Fatalf("%d published run.closed outbox rows, want 1", n)
	}
	if n := r.count(`SELECT count(*) FROM processed_events WHERE consumer = 'run-close' AND ce_id = 'ce-1'`); n != 1 {
		t.Fatalf("%d processed events, want 1", n)
	}
	recs := r.kc.Consume(t, events.TopicAssignments, 1, 10*time.Second)
	if len(recs) != 1 || string(recs[0].Key) != run.ID.String() {
		t.Fatalf("%d run.closed records on %s", len(recs), events.TopicAssignments)
	}
	ev, err := kafka.Event(recs[0])
	if err != nil {
		t.Fatal(err)
	}
	var rc events.RunClosed
	if err := ev.DataAs(&rc); err != nil || ev.Type() != events.TypeRunClosed || ev.Source() != "/coffeebuddy/test" ||
		rc != (events.RunClosed{RunID: run.ID.String(), RunnerUserID: "U3", Reason: want, ClosedBy: "U1"}) {
		t.Fatalf("run.closed = %s %+v (%v)", ev.Type(), rc, err)
	}
	// Candidates U2 (1 run) and U3 (0): population standard deviation 0.5.
	if g := r.gauge(); g != 0.5 {
		t.Fatalf("fairness gauge = %v, want 0.5", g)
	}
}

// TestCloseIsOneTransaction makes the last write (the outbox row) fail:
// the status change, the assignment, the audit row and the processed-event
// mark must all roll back with it, so the broker's retry closes the run.
func TestCloseIsOneTransaction(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	run := r.run("C1", "U1", now.Add(-10*time.Minute), "U2")
	if _, err := r.db.Pool.Exec(ctx, `
		CREATE FUNCTION refuse_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN RAISE EXCEPTION 'outbox unavailable'; END $$;
		CREATE TRIGGER refuse_outbox BEFORE INSERT ON outbox FOR EACH ROW EXECUTE FUNCTION refuse_outbox();`); err != nil {
		t.Fatal(err)
	}
	if _, err := r.c.Close(ctx, "run-tick", "ce-1", run.ID, "last_call", now, quiet); err == nil {
		t.Fatal("Close succeeded with the outbox failing")
	}
	got, err := store.GetRun(ctx, r.db.Pool, run.ID)
	if err != nil || got.Status != coffee.StatusActive || got.RunnerUserID != "" || !got.ClosedAt.IsZero() {
		t.Fatalf("run after failed close = %+v (%v)", got, err)
	}
	for _, q := range []string{`SELECT count(*) FROM audit_logs`, `SELECT count(*) FROM outbox`, `SELECT count(*) FROM processed_events`} {
		if n := r.count(q); n != 0 {
			t.Fatalf("%s = %d after a failed close, want 0", q, n)
		}
	}
	if _, err := r.db.Pool.Exec(ctx, `DROP TRIGGER refuse_outbox ON outbox`); err != nil {
		t.Fatal(err)
	}
	res, err := r.c.Close(ctx, "run-tick", "ce-1", run.ID, "last_call", now, quiet)
	if err != nil || !res.Closed || res.Run.RunnerUserID != "U2" {
		t.Fatalf("retried Close = %+v, %v", res, err)
	}
	// Closed at last call: no user is the actor.
	if n := r.count(`SELECT count(*) FROM audit_logs WHERE event_type = 'run_closed' AND actor_user_id IS NULL
		AND details->>'closed_by' = 'last_call'`); n != 1 {
		t.Fatalf("%d last-call audit rows, want 1", n)
	}
}

func TestDuplicateEventAndAlreadyClosedRunAreNoOps(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	run := r.run("C1", "U1", now.Add(-10*time.Minute), "U2")
	if _, err := r.c.Close(ctx, "run-close", "ce-1", run.ID, "U1", now, quiet); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, consumer, ceID string
		wantRun              bool // Result.Run is filled for an already-closed run, not for a duplicate
	}{
		{"redelivery of the same event", "run-close", "ce-1", false},
		{"another click on a closed run", "run-close", "ce-2", true},
		{"last call after Close now", "run-tick", "tick-1", true},
	}
	later := now.Add(5 * time.Minute)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := r.c.Close(ctx, tt.consumer, tt.ceID, run.ID, "last_call", later, quiet)
			if err != nil {
				t.Fatal(err)
			}
			if res.Closed || res.Assignment != (coffee.Assignment{}) {
				t.Fatalf("Close = %+v, want nothing done", res)
			}
			if got := res.Run.ID == run.ID && res.Run.Status == coffee.StatusClosed; got != tt.wantRun {
				t.Fatalf("Result.Run = %+v", res.Run)
			}
		})
	}
	got, _ := store.GetRun(ctx, r.db.Pool, run.ID)
	if !got.ClosedAt.Equal(now) || got.RunnerUserID != "U2" {
		t.Fatalf("run changed: %+v", got)
	}
	if n := r.count(`SELECT count(*) FROM audit_logs WHERE run_id = $1`, run.ID); n != 1 {
		t.Fatalf("%d audit rows, want 1", n)
	}
	if n := r.count(`SELECT count(*) FROM outbox`); n != 1 {
		t.Fatalf("%d outbox rows, want 1", n)
	}
	// Every distinct event is remembered, so its redelivery is skipped too.
	if n := r.count(`SELECT count(*) FROM processed_events`); n != 3 {
		t.Fatalf("%d processed events, want 3", n)
	}
}

func TestRunWithoutOrdersClosesWithoutRunner(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	run := r.run("C1", "U1", now.Add(-10*time.Minute))
	res, err := r.c.Close(ctx, "run-tick", "tick-1", run.ID, "last_call", now, quiet)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Closed || res.Run.RunnerUserID != "" || res.Assignment.Reason != "nobody ordered" {
		t.Fatalf("Close = %+v", res)
	}
	var data []byte
	if err := r.db.Pool.QueryRow(ctx, `SELECT data FROM outbox WHERE ce_type = $1`, events.TypeRunClosed).Scan(&data); err != nil {
		t.Fatal(err)
	}
	var rc events.RunClosed
	if err := json.Unmarshal(data, &rc); err != nil || rc.RunnerUserID != "" || rc.ClosedBy != "last_call" {
		t.Fatalf("run.closed = %+v (%v)", rc, err)
	}
	if g := r.gauge(); g != 0 {
		t.Fatalf("fairness gauge = %v after a run nobody ordered in, want untouched (0)", g)
	}
}

func TestUnknownRunIsAnError(t *testing.T) {
	r := newRig(t)
	_, err := r.c.Close(context.Background(), "run-close", "ce-1", uuid.New(), "U1", now, quiet)
	if err == nil {
		t.Fatal("closing an unknown run succeeded")
	}
	if n := r.count(`SELECT count(*) FROM processed_events`); n != 0 {
		t.Fatalf("%d processed events after a failed close", n)
	}
}
