package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/coffeebuddy/coffeebuddy/shared/blocks"
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

// clock is the handler's now; runs get last call ten minutes later.
var clock = time.Date(2026, 11, 21, 9, 30, 0, 0, time.UTC)

type rig struct {
	db    *pgtest.DB
	kc    *kafkatest.Cluster
	slack *slackstandin.Server
	h     *Handler
	now   time.Time
}

func newRig(t *testing.T) *rig {
	t.Helper()
	db, kc := pgtest.New(t), kafkatest.New(t)
	sl, clients := functest.Slack(t)
	r := &rig{db: db, kc: kc, slack: sl, now: clock}
	r.h = New(store.New(db.Pool), functest.Relay(t, db.Pool, kc), clients,
		func() time.Time { return r.now })
	return r
}

// startRun creates an active run in channel, last call ten minutes after clock.
func (r *rig) startRun(t *testing.T, channel string) uuid.UUID {
	t.Helper()
	return functest.StartRun(t, r.db.Pool, store.NewRun{
		TeamID: "T1", ChannelID: channel, InitiatorUserID: "U0INIT",
		LastCallAt: clock.Add(10 * time.Minute), CreatedAt: clock.Add(-time.Minute),
	}).ID
}

// submitted is an order.submitted event accepted by the ingress at `at`.
func submitted(id, channel, user, drink, size, custom string, at time.Time) event.Event {
	e := event.New()
	e.SetID(id)
	e.SetType(events.TypeOrderSubmitted)
	e.SetSource(events.SourceIngress)
	e.SetTime(at)
	_ = e.SetData(event.ApplicationJSON, events.OrderSubmitted{
		TeamID: "T1", ChannelID: channel, UserID: user, UserName: strings.ToLower(user), Drink: drink, Size: size,
		Customizations: custom, At: at,
	})
	return e
}

func (r *rig) count(t *testing.T, sql string, args ...any) int {
	t.Helper()
	return functest.Count(t, r.db.Pool, sql, args...)
}

func (r *rig) handle(t *testing.T, e event.Event) {
	t.Helper()
	if _, err := r.h.Handle(context.Background(), e); err != nil {
		t.Fatalf("Handle(%s) = %v", e.ID(), err)
	}
}

// placedFacts reads the order.placed outbox rows, oldest first.
func (r *rig) placedFacts(t *testing.T) []events.OrderPlaced {
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

func TestPlacesOrderWithAuditAndOutbox(t *testing.T) {
	r := newRig(t)
	run := r.startRun(t, "C1")
	r.handle(t, submitted("ce-1", "C1", "U1", "latte", "large", "oat milk", clock))

	orders, err := store.RunOrders(context.Background(), r.db.Pool, run)
	if err != nil {
		t.Fatal(err)
	}
	if len(orders) != 1 || orders[0].UserID != "U1" || orders[0].Drink != "latte" || orders[0].Size != "large" ||
		orders[0].Customizations != "oat milk" || orders[0].DisplayName != "u1" || !orders[0].CreatedAt.Equal(clock) {
		t.Fatalf("orders = %+v", orders)
	}
	if n := r.count(t, `SELECT count(*) FROM audit_logs WHERE event_type = 'order_placed' AND actor_user_id = 'U1'
		AND run_id = $1 AND ce_id = 'ce-1' AND details->>'customizations' = 'oat milk'`, run); n != 1 {
		t.Fatalf("%d order_placed audit rows, want 1", n)
	}
	if n := r.count(t, `SELECT count(*) FROM outbox WHERE ce_type = $1 AND partition_key = $2 AND published_at IS NOT NULL`,
		events.TypeOrderPlaced, run.String()); n != 1 {
		t.Fatalf("%d published order.placed rows, want 1", n)
	}
	recs := r.kc.Consume(t, events.TopicOrders, 1, 5*time.Second)
	if len(recs) != 1 {
		t.Fatalf("%d records, want 1", len(recs))
	}
	ev, err := kafka.Event(recs[0])
	if err != nil {
		t.Fatal(err)
	}
	var p events.OrderPlaced
	if err := ev.DataAs(&p); err != nil {
		t.Fatal(err)
	}
	want := events.OrderPlaced{RunID: run.String(), UserID: "U1", Drink: "latte", Size: "large", Customizations: "oat milk"}
	if p != want || ev.Type() != events.TypeOrderPlaced || string(recs[0].Key) != run.String() {
		t.Fatalf("order.placed %+v (type %s, key %s), want %+v", p, ev.Type(), recs[0].Key, want)
	}
	if n := len(r.slack.Ephemerals("")); n != 0 {
		t.Fatalf("%d ephemerals, want none (order-confirm confirms)", n)
	}
}

// TestEditReplacesOrder: submitting again before last call edits the order
// (one per user per run) and moves the preference count.
func TestEditReplacesOrder(t *testing.T) {
	r := newRig(t)
	run := r.startRun(t, "C1")
	r.handle(t, submitted("ce-1", "C1", "U1", "latte", "large", "oat milk", clock))
	r.now = clock.Add(time.Minute)
	r.handle(t, submitted("ce-2", "C1", "U1", "mocha", "small", "", clock.Add(time.Minute)))

	orders, err := store.RunOrders(context.Background(), r.db.Pool, run)
	if err != nil {
		t.Fatal(err)
	}
	if len(orders) != 1 || orders[0].Drink != "mocha" || orders[0].Size != "small" || orders[0].Customizations != "" {
		t.Fatalf("orders after edit = %+v, want one small mocha", orders)
	}
	if n := r.count(t, `SELECT count(*) FROM audit_logs WHERE event_type = 'order_updated' AND ce_id = 'ce-2'`); n != 1 {
		t.Fatalf("%d order_updated audit rows, want 1", n)
	}
	facts := r.placedFacts(t)
	if len(facts) != 2 || facts[0].Edited || !facts[1].Edited || facts[1].Drink != "mocha" {
		t.Fatalf("order.placed facts = %+v", facts)
	}
	prefs, err := store.Preferences(context.Background(), r.db.Pool, "U1")
	if err != nil {
		t.Fatal(err)
	}
	if len(prefs) != 1 || prefs[0].Drink != "mocha" || prefs[0].OrderCount != 1 {
		t.Fatalf("preferences = %+v, want only small mocha ×1", prefs)
	}
}

func TestRedeliveryChangesNothing(t *testing.T) {
	r := newRig(t)
	r.startRun(t, "C1")
	e := submitted("ce-1", "C1", "U1", "latte", "large", "", clock)
	r.handle(t, e)
	r.now = clock.Add(time.Second)
	r.handle(t, e)
	for sql, want := range map[string]int{
		`SELECT count(*) FROM orders`:                                          1,
		`SELECT count(*) FROM audit_logs`:                                      1,
		`SELECT count(*) FROM outbox`:                                          1,
		`SELECT coalesce(sum(order_count), 0) FROM user_preferences`:           1,
		`SELECT count(*) FROM processed_events WHERE consumer = 'order-place'`: 1,
	} {
		if n := r.count(t, sql); n != want {
			t.Errorf("%s = %d, want %d", sql, n, want)
		}
	}
}

// TestClosedRunRefusals: an order that no run takes is answered with an
// ephemeral, once, and stores nothing.
func TestClosedRunRefusals(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(t *testing.T, r *rig)
		now     time.Time
		eventAt time.Time
	}{
		{"after last call", func(t *testing.T, r *rig) { r.startRun(t, "C1") }, clock.Add(10 * time.Minute), clock.Add(10 * time.Minute)},
		{"after last call, late delivery", func(t *testing.T, r *rig) { r.startRun(t, "C1") }, clock.Add(11 * time.Minute), clock.Add(9 * time.Minute)},
		{"run closed, event old", func(t *testing.T, r *rig) {
			id := r.startRun(t, "C1")
			if _, err := r.db.Pool.Exec(context.Background(), `UPDATE coffee_runs SET status = 'closed', closed_at = $2 WHERE id = $1`, id, clock); err != nil {
				t.Fatal(err)
			}
		}, clock, clock.Add(-runPending)},
		{"run closed, event young: no waiting", func(t *testing.T, r *rig) {
			id := r.startRun(t, "C1")
			if _, err := r.db.Pool.Exec(context.Background(), `UPDATE coffee_runs SET status = 'completed', closed_at = $2, completed_at = $2 WHERE id = $1`, id, clock); err != nil {
				t.Fatal(err)
			}
		}, clock, clock},
		{"no run ever, event old", func(*testing.T, *rig) {}, clock, clock.Add(-runPending)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t)
			tt.setup(t, r)
			r.now = tt.now
			e := submitted("ce-1", "C1", "U1", "latte", "large", "oat milk", tt.eventAt)
			r.handle(t, e)
			r.handle(t, e) // redelivery: told once
			eph := r.slack.Ephemerals("U1")
			if len(eph) != 1 || eph[0].Text != blocks.RunClosedNotice || eph[0].Channel != "C1" {
				t.Fatalf("ephemerals = %+v, want one %q in C1", eph, blocks.RunClosedNotice)
			}
			if eph[0].Text != "This coffee run has closed, so your order wasn't added. Start a new one with /coffee." {
				t.Fatalf("notice text = %q", eph[0].Text)
			}
			for _, table := range []string{"orders", "outbox", "audit_logs", "user_preferences", "users"} {
				if n := r.count(t, `SELECT count(*) FROM `+table); n != 0 {
					t.Errorf("%d rows in %s, want 0", n, table)
				}
			}
		})
	}
}

// TestWaitsForTheRunBeingStarted: /coffee opens the modal before run-start
// has created the run; a fast submission is retried until the run exists.
func TestWaitsForTheRunBeingStarted(t *testing.T) {
	r := newRig(t)
	e := submitted("ce-1", "C1", "U1", "latte", "large", "", clock.Add(-2*time.Second))
	_, err := r.h.Handle(context.Background(), e)
	if err == nil || function.IsPermanent(err) {
		t.Fatalf("Handle = %v, want a retryable error", err)
	}
	if n := len(r.slack.Ephemerals("")); n != 0 {
		t.Fatalf("%d ephemerals while the run may still come, want 0", n)
	}
	run := r.startRun(t, "C1") // run-start lands
	r.now = clock.Add(time.Second)
	r.handle(t, e) // the broker's retry
	if n := r.count(t, `SELECT count(*) FROM orders WHERE run_id = $1 AND user_id = 'U1'`, run); n != 1 {
		t.Fatalf("%d orders after the retry, want 1", n)
	}
	if n := len(r.slack.Ephemerals("")); n != 0 {
		t.Fatalf("%d ephemerals, want 0", n)
	}
}

func TestNoticeSlackFailureIsRetried(t *testing.T) {
	r := newRig(t)
	r.startRun(t, "C1")
	r.now = clock.Add(time.Hour)
	r.slack.SetFault("chat.postEphemeral", slackstandin.FailN(1, 500, 0))
	e := submitted("ce-1", "C1", "U1", "latte", "large", "", clock.Add(time.Hour))
	if _, err := r.h.Handle(context.Background(), e); err == nil || function.IsPermanent(err) {
		t.Fatalf("Handle = %v, want a retryable error", err)
	}
	r.handle(t, e)
	r.handle(t, e)
	if n := len(r.slack.Ephemerals("U1")); n != 1 {
		t.Fatalf("%d ephemerals, want 1", n)
	}
}

func TestBadEventsArePermanent(t *testing.T) {
	r := newRig(t)
	r.startRun(t, "C1")
	notJSON := submitted("ce-x", "C1", "U1", "latte", "large", "", clock)
	_ = notJSON.SetData(event.ApplicationJSON, []byte("{nope"))
	tests := map[string]event.Event{
		"undecodable payload":    notJSON,
		"no channel":             submitted("ce-1", "", "U1", "latte", "large", "", clock),
		"no user":                submitted("ce-2", "C1", "", "latte", "large", "", clock),
		"unknown drink":          submitted("ce-3", "C1", "U1", "tea", "large", "", clock),
		"unknown size":           submitted("ce-4", "C1", "U1", "latte", "huge", "", clock),
		"customization too long": submitted("ce-5", "C1", "U1", "latte", "large", strings.Repeat("x", coffee.MaxCustomization+1), clock),
	}
	for name, e := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := r.h.Handle(context.Background(), e); !function.IsPermanent(err) {
				t.Fatalf("Handle = %v, want a permanent error", err)
			}
		})
	}
	if n := r.count(t, `SELECT count(*) FROM orders`); n != 0 {
		t.Fatalf("%d orders from bad events", n)
	}
}

// TestHostileCustomizationsStoredVerbatim: whatever is typed is stored and
// forwarded byte for byte; SQL metacharacters change nothing.
func TestHostileCustomizationsStoredVerbatim(t *testing.T) {
	r := newRig(t)
	hostile := []string{
		"<!channel>",
		"<@U123>",
		"*bold* _it_ ~strike~ `code`",
		"&<>",
		strings.Repeat("☕", coffee.MaxCustomization),
		"'; DROP TABLE orders; --",
		`"); DELETE FROM user_preferences; -- \ $1 %s`,
		"<!here|here> <#C1> <https://evil.example|click>",
	}
	for i, c := range hostile {
		ch := fmt.Sprintf("C%d", i)
		r.startRun(t, ch)
		r.handle(t, submitted(fmt.Sprintf("ce-%d", i), ch, fmt.Sprintf("U%d", i), "latte", "large", c, clock))
	}
	facts := r.placedFacts(t)
	if len(facts) != len(hostile) {
		t.Fatalf("%d order.placed facts, want %d", len(facts), len(hostile))
	}
	for i, c := range hostile {
		var got string
		err := r.db.Pool.QueryRow(context.Background(), `SELECT customizations FROM orders WHERE user_id = $1`, fmt.Sprintf("U%d", i)).Scan(&got)
		if err != nil || got != c {
			t.Errorf("stored %q (%v), want %q", got, err, c)
		}
		if facts[i].Customizations != c {
			t.Errorf("order.placed carries %q, want %q", facts[i].Customizations, c)
		}
	}
	if n := r.count(t, `SELECT count(*) FROM orders`); n != len(hostile) {
		t.Fatalf("%d orders, want %d", n, len(hostile))
	}
	if n := r.count(t, `SELECT sum(order_count) FROM user_preferences`); n != len(hostile) {
		t.Fatalf("%d preference counts, want %d", n, len(hostile))
	}
}

// TestConcurrentOrdersFromOneUserKeepExactCounts fires one user's orders
// into 30 runs at once, through Handle, and checks every count.
func TestConcurrentOrdersFromOneUserKeepExactCounts(t *testing.T) {
	r := newRig(t)
	const n = 30
	evs := make([]event.Event, n)
	want := map[[2]string]int{}
	for i := range n {
		ch := fmt.Sprintf("C%02d", i)
		r.startRun(t, ch)
		// Two thirds hit one preference row; the rest spread over others.
		drink, size := "latte", "large"
		if i%3 == 2 {
			drink, size = coffee.Drinks[i%len(coffee.Drinks)], coffee.Sizes[i%len(coffee.Sizes)]
		}
		want[[2]string{drink, size}]++
		evs[i] = submitted(fmt.Sprintf("ce-%02d", i), ch, "U1", drink, size, fmt.Sprintf("run %d", i), clock)
	}
	start := make(chan struct{})
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for _, e := range evs {
		wg.Go(func() {
			<-start
			_, err := r.h.Handle(context.Background(), e)
			errs <- err
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	prefs, err := store.Preferences(context.Background(), r.db.Pool, "U1")
	if err != nil {
		t.Fatal(err)
	}
	got := map[[2]string]int{}
	total := 0
	for _, p := range prefs {
		got[[2]string{p.Drink, p.Size}] = p.OrderCount
		total += p.OrderCount
		if !p.LastOrderedAt.Equal(clock) {
			t.Errorf("%s %s last_ordered_at = %v, want %v", p.Size, p.Drink, p.LastOrderedAt, clock)
		}
	}
	if total != n || len(got) != len(want) {
		t.Fatalf("preferences %v (total %d), want %v", got, total, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%v count = %d, want %d", k, got[k], v)
		}
	}
	for sql, want := range map[string]int{
		`SELECT count(*) FROM orders WHERE user_id = 'U1'`:                     n,
		`SELECT count(DISTINCT run_id) FROM orders`:                            n,
		`SELECT count(*) FROM audit_logs WHERE event_type = 'order_placed'`:    n,
		`SELECT count(*) FROM outbox WHERE published_at IS NOT NULL`:           n,
		`SELECT count(*) FROM users WHERE user_id = 'U1'`:                      1,
		`SELECT count(*) FROM processed_events WHERE consumer = 'order-place'`: n,
	} {
		if c := r.count(t, sql); c != want {
			t.Errorf("%s = %d, want %d", sql, c, want)
		}
	}
	recent, err := store.RecentOrders(context.Background(), r.db.Pool, "U1", 3)
	if err != nil || len(recent) != 3 {
		t.Fatalf("recent orders = %d (%v), want 3", len(recent), err)
	}
}
