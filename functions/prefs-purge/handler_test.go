package main

import (
	"context"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/coffeebuddy/coffeebuddy/shared/events"
	"github.com/coffeebuddy/coffeebuddy/shared/functest"
	"github.com/coffeebuddy/coffeebuddy/shared/function"
	"github.com/coffeebuddy/coffeebuddy/shared/postgres/pgtest"
	"github.com/coffeebuddy/coffeebuddy/shared/store"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

var clock = time.Date(2026, 11, 21, 3, 17, 0, 0, time.UTC)

func tick(id string) event.Event {
	return functest.Event(id, events.TypePing, "/apis/v1/namespaces/coffeebuddy/pingsources/prefs-purge-tick", map[string]string{"job": "prefs-purge"})
}

// TestPurgesOnlyPreferencesOlderThan90Days seeds preferences around the
// boundary and checks exactly the stale ones go, with one audit row.
func TestPurgesOnlyPreferencesOlderThan90Days(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	day := 24 * time.Hour
	seed := []struct {
		user, drink string
		age         time.Duration
		kept        bool
	}{
		{"U1", "latte", 0, true},
		{"U1", "mocha", 89 * day, true},
		{"U1", "espresso", 90 * day, true}, // exactly 90 days: not older
		{"U1", "americano", 90*day + time.Second, false},
		{"U2", "latte", 91 * day, false},
		{"U3", "cappuccino", 400 * day, false},
		{"U3", "latte", time.Hour, true},
	}
	for _, s := range seed {
		if _, err := db.Pool.Exec(ctx, `INSERT INTO user_preferences (user_id, drink, size, order_count, last_ordered_at)
			VALUES ($1, $2, 'large', 3, $3)`, s.user, s.drink, clock.Add(-s.age)); err != nil {
			t.Fatal(err)
		}
	}
	h := New(store.New(db.Pool), func() time.Time { return clock })
	for range 2 { // the second is a redelivery of the same tick
		if _, err := h.Handle(ctx, tick("tick-1")); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range seed {
		var n int
		if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM user_preferences WHERE user_id = $1 AND drink = $2`, s.user, s.drink).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if (n == 1) != s.kept {
			t.Errorf("%s %s (%v old): kept = %v, want %v", s.user, s.drink, s.age, n == 1, s.kept)
		}
	}
	var audits int
	var deleted string
	err := db.Pool.QueryRow(ctx, `SELECT count(*), max(details->>'deleted') FROM audit_logs WHERE event_type = 'preferences_purged' AND ce_id = 'tick-1'`).Scan(&audits, &deleted)
	if err != nil || audits != 1 || deleted != "3" {
		t.Fatalf("%d preferences_purged audit rows, deleted %q (%v); want 1 row, 3 deleted", audits, deleted, err)
	}
	// The next day's tick finds nothing new but is still audited.
	if _, err := h.Handle(ctx, tick("tick-2")); err != nil {
		t.Fatal(err)
	}
	db.Pool.QueryRow(ctx, `SELECT details->>'deleted' FROM audit_logs WHERE ce_id = 'tick-2'`).Scan(&deleted)
	if deleted != "0" {
		t.Fatalf("second tick deleted %q, want 0", deleted)
	}
}

func TestHandleRejectsUndecodablePayload(t *testing.T) {
	db := pgtest.New(t)
	e := tick("1")
	_ = e.SetData("application/json", []byte("{not json"))
	if _, err := New(store.New(db.Pool), time.Now).Handle(context.Background(), e); !function.IsPermanent(err) {
		t.Fatalf("Handle = %v, want a permanent error", err)
	}
}
