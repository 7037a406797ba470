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
	"github.com/coffeebuddy/coffeebuddy/shared/kafka/kafkatest"
	"github.com/coffeebuddy/coffeebuddy/shared/postgres/pgtest"
	"github.com/coffeebuddy/coffeebuddy/shared/slackstandin"
	"github.com/coffeebuddy/coffeebuddy/shared/store"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

var clock = time.Date(2026, 11, 21, 9, 30, 0, 0, time.UTC)

// hostile is U1's latest customization of their favourite.
const hostile = "<!channel> <@U123> *bold* &<> '; DROP TABLE orders; --"

type rig struct {
	db    *pgtest.DB
	kc    *kafkatest.Cluster
	slack *slackstandin.Server
	h     *Handler
	now   time.Time
	run   uuid.UUID // active in C1, last call clock+10m
	seq   int
}

func newRig(t *testing.T) *rig {
	t.Helper()
	db, kc := pgtest.New(t), kafkatest.New(t)
	sl, clients := functest.Slack(t)
	r := &rig{db: db, kc: kc, slack: sl, now: clock}
	r.h = New(store.New(db.Pool), functest.Relay(t, db.Pool, kc), clients,
		func() time.Time { return r.now })
	// U1's history: large latte twice (latest with a hostile customization),
	// small mocha once. U2 has none.
	r.pastOrder(t, "U1", "latte", "large", "oat milk", clock.Add(-72*time.Hour))
	r.pastOrder(t, "U1", "mocha", "small", "", clock.Add(-48*time.Hour))
	r.pastOrder(t, "U1", "latte", "large", hostile, clock.Add(-24*time.Hour))
	r.run = r.newRun(t, "C1", clock.Add(-time.Minute), clock.Add(10*time.Minute))
	return r
}

func (r *rig) newRun(t *testing.T, channel string, created, lastCall time.Time) uuid.UUID {
	t.Helper()
	return functest.StartRun(t, r.db.Pool, store.NewRun{
		TeamID: "T1", ChannelID: channel, InitiatorUserID: "U0INIT", LastCallAt: lastCall, CreatedAt: created,
	}).ID
}

// pastOrder orders in a run of its own, completed since.
func (r *rig) pastOrder(t *testing.T, user, drink, size, custom string, at time.Time) {
	t.Helper()
	r.seq++
	ch := fmt.Sprintf("CPAST%d", r.seq)
	id := r.newRun(t, ch, at, at.Add(10*time.Minute))
	ctx := context.Background()
	err := pgx.BeginFunc(ctx, r.db.Pool, func(tx pgx.Tx) error {
		_, _, err := store.PlaceOrder(ctx, tx, "T1", ch, coffee.Order{UserID: user, Drink: drink, Size: size, Customizations: custom}, at)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE coffee_runs SET status = 'completed', closed_at = $2, completed_at = $2 WHERE id = $1`, id, at.Add(20*time.Minute))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func (r *rig) click(id, user string, run uuid.UUID) event.Event {
	e := event.New()
	e.SetID(id)
	e.SetType(events.TypeOrderUsual)
	e.SetSource(events.SourceIngress)
	e.SetTime(r.now)
	_ = e.SetData(event.ApplicationJSON, events.RunAction{
		RunID: run.String(), TeamID: "T1", ChannelID: "C1", UserID: user, UserName: "name-" + user, At: r.now,
	})
	return e
}

func (r *rig) handle(t *testing.T, e event.Event) {
	t.Helper()
	if _, err := r.h.Handle(context.Background(), e); err != nil {
		t.Fatalf("Handle(%s) = %v", e.ID(), err)
	}
}

func (r *rig) count(t *testing.T, sql string, args ...any) int {
	t.Helper()
	return functest.Count(t, r.db.Pool, sql, args...)
}

func (r *rig) facts(t *testing.T) []events.OrderPlaced {
	t.Helper()
	rows, err := r.db.Pool.Query(context.Background(), `SELECT data FROM outbox WHERE ce_type = $1 ORDER BY id`, events.TypeOrderPlaced)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[events.OrderPlaced])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestUsualPlacesFavouriteWithLatestCustomizations(t *testing.T) {
	r := newRig(t)
	e := r.click("ce-1", "U1", r.run)
	r.handle(t, e)
	r.handle(t, e) // redelivery changes nothing

	orders, err := store.RunOrders(context.Background(), r.db.Pool, r.run)
	if err != nil {
		t.Fatal(err)
	}
	if len(orders) != 1 || orders[0].UserID != "U1" || orders[0].Drink != "latte" || orders[0].Size != "large" ||
		orders[0].Customizations != hostile || orders[0].DisplayName != "name-U1" {
		t.Fatalf("orders = %+v, want U1's large latte with %q", orders, hostile)
	}
	if n := r.count(t, `SELECT count(*) FROM audit_logs WHERE event_type = 'order_placed' AND run_id = $1
		AND actor_user_id = 'U1' AND ce_id = 'ce-1' AND (details->>'usual')::boolean`, r.run); n != 1 {
		t.Fatalf("%d order_placed audit rows, want 1", n)
	}
	want := events.OrderPlaced{RunID: r.run.String(), UserID: "U1", Drink: "latte", Size: "large", Customizations: hostile, Usual: true}
	if f := r.facts(t); len(f) != 1 || f[0] != want {
		t.Fatalf("order.placed facts %+v, want [%+v]", f, want)
	}
	recs := r.kc.Consume(t, events.TopicOrders, 1, 5*time.Second)
	if len(recs) != 1 || string(recs[0].Key) != r.run.String() {
		t.Fatalf("%d records, want 1 keyed by the run", len(recs))
	}
	prefs, err := store.Preferences(context.Background(), r.db.Pool, "U1")
	if err != nil || len(prefs) != 2 || prefs[0].Drink != "latte" || prefs[0].OrderCount != 3 {
		t.Fatalf("preferences = %+v (%v), want large latte ×3 first", prefs, err)
	}
	if n := len(r.slack.Ephemerals("")); n != 0 {
		t.Fatalf("%d ephemerals, want none (order-confirm confirms)", n)
	}
}

func TestUsualReplacesTheOrderInTheRun(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	err := pgx.BeginFunc(ctx, r.db.Pool, func(tx pgx.Tx) error {
		_, _, err := store.PlaceOrder(ctx, tx, "T1", "C1", coffee.Order{UserID: "U1", Drink: "americano", Size: "medium"}, clock)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	r.handle(t, r.click("ce-1", "U1", r.run))
	orders, err := store.RunOrders(ctx, r.db.Pool, r.run)
	if err != nil || len(orders) != 1 || orders[0].Drink != "latte" {
		t.Fatalf("orders = %+v (%v), want the usual only", orders, err)
	}
	if n := r.count(t, `SELECT count(*) FROM audit_logs WHERE event_type = 'order_updated' AND ce_id = 'ce-1'`); n != 1 {
		t.Fatalf("%d order_updated audit rows, want 1", n)
	}
	if f := r.facts(t); len(f) != 1 || !f[0].Edited || !f[0].Usual {
		t.Fatalf("facts = %+v, want one edited usual", f)
	}
}

// TestRefusals: the clicker is told why, once, and nothing is stored.
func TestRefusals(t *testing.T) {
	tests := []struct {
		name  string
		user  string
		setup func(t *testing.T, r *rig) uuid.UUID // returns the clicked run
		want  string
	}{
		{"no usual yet", "U2", func(t *testing.T, r *rig) uuid.UUID { return r.run }, blocks.NoUsualNotice},
		{"past last call", "U1", func(t *testing.T, r *rig) uuid.UUID {
			r.now = clock.Add(10 * time.Minute)
			return r.run
		}, blocks.RunClosedNotice},
		{"clicked run closed, a new one active", "U1", func(t *testing.T, r *rig) uuid.UUID {
			if _, err := r.db.Pool.Exec(context.Background(), `UPDATE coffee_runs SET status = 'closed', closed_at = $2 WHERE id = $1`, r.run, clock); err != nil {
				t.Fatal(err)
			}
			r.newRun(t, "C1", clock, clock.Add(10*time.Minute))
			return r.run
		}, blocks.RunClosedNotice},
		{"clicked run cancelled", "U1", func(t *testing.T, r *rig) uuid.UUID {
			if _, err := r.db.Pool.Exec(context.Background(), `UPDATE coffee_runs SET status = 'cancelled', cancelled_at = $2 WHERE id = $1`, r.run, clock); err != nil {
				t.Fatal(err)
			}
			return r.run
		}, blocks.RunClosedNotice},
		{"no usual and run closed: closed wins", "U2", func(t *testing.T, r *rig) uuid.UUID {
			r.now = clock.Add(time.Hour)
			return r.run
		}, blocks.RunClosedNotice},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t)
			run := tt.setup(t, r)
			before := r.count(t, `SELECT count(*) FROM orders`)
			e := r.click("ce-1", tt.user, run)
			r.handle(t, e)
			r.handle(t, e) // redelivery: told once
			eph := r.slack.Ephemerals(tt.user)
			if len(eph) != 1 || eph[0].Text != tt.want || eph[0].Channel != "C1" {
				t.Fatalf("ephemerals = %+v, want one %q in C1", eph, tt.want)
			}
			if n := r.count(t, `SELECT count(*) FROM orders`); n != before {
				t.Errorf("%d orders, want %d", n, before)
			}
			if n := r.count(t, `SELECT count(*) FROM outbox`); n != 0 {
				t.Errorf("%d outbox rows, want 0", n)
			}
			if n := r.count(t, `SELECT count(*) FROM audit_logs`); n != 0 {
				t.Errorf("%d audit rows, want 0", n)
			}
		})
	}
}

func TestRefusalTexts(t *testing.T) {
	if blocks.NoUsualNotice != "You don't have a usual yet. Use *Add my order* and I'll remember it." {
		t.Errorf("NoUsualNotice = %q", blocks.NoUsualNotice)
	}
	if blocks.RunClosedNotice != "This coffee run has closed, so your order wasn't added. Start a new one with /coffee." {
		t.Errorf("RunClosedNotice = %q", blocks.RunClosedNotice)
	}
}

func TestBadEventsArePermanent(t *testing.T) {
	r := newRig(t)
	notJSON := r.click("ce-x", "U1", r.run)
	_ = notJSON.SetData(event.ApplicationJSON, []byte("{nope"))
	badID := r.click("ce-y", "U1", r.run)
	_ = badID.SetData(event.ApplicationJSON, events.RunAction{RunID: "not-a-uuid", UserID: "U1"})
	tests := map[string]event.Event{
		"undecodable payload": notJSON,
		"bad run id":          badID,
		"unknown run":         r.click("ce-z", "U1", uuid.New()),
		"no user":             r.click("ce-w", "", r.run),
	}
	for name, e := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := r.h.Handle(context.Background(), e); !function.IsPermanent(err) {
				t.Fatalf("Handle = %v, want a permanent error", err)
			}
		})
	}
	if n := r.count(t, `SELECT count(*) FROM orders WHERE run_id = $1`, r.run); n != 0 {
		t.Fatalf("%d orders from bad events", n)
	}
}

func TestSlackFailureOnNoticeIsRetried(t *testing.T) {
	r := newRig(t)
	r.slack.SetFault("chat.postEphemeral", slackstandin.FailN(1, 500, 0))
	e := r.click("ce-1", "U2", r.run)
	if _, err := r.h.Handle(context.Background(), e); err == nil || function.IsPermanent(err) {
		t.Fatalf("Handle = %v, want a retryable error", err)
	}
	r.handle(t, e)
	if n := len(r.slack.Ephemerals("U2")); n != 1 {
		t.Fatalf("%d ephemerals, want 1", n)
	}
}
