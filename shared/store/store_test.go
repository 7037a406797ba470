package store_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/coffeebuddy/coffeebuddy/shared/coffee"
	"github.com/coffeebuddy/coffeebuddy/shared/postgres/pgtest"
	"github.com/coffeebuddy/coffeebuddy/shared/store"
	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func newRun(channel string) store.NewRun {
	now := time.Now().UTC()
	return store.NewRun{TeamID: "T1", ChannelID: channel, InitiatorUserID: "U1", LastCallAt: now.Add(10 * time.Minute), CreatedAt: now}
}

func TestOnceRunsEffectExactlyOnce(t *testing.T) {
	db := pgtest.New(t)
	s := store.New(db.Pool)
	ctx := context.Background()
	calls := 0
	effect := func(tx pgx.Tx) error {
		calls++
		_, err := store.CreateRun(ctx, tx, newRun("C1"))
		return err
	}
	dup, err := s.Once(ctx, "test", "ce-1", effect)
	if err != nil || dup {
		t.Fatalf("first delivery: dup=%v err=%v", dup, err)
	}
	dup, err = s.Once(ctx, "test", "ce-1", effect)
	if err != nil || !dup {
		t.Fatalf("redelivery: dup=%v err=%v, want duplicate", dup, err)
	}
	if calls != 1 {
		t.Fatalf("effect ran %d times, want 1", calls)
	}
	// Another consumer processes the same event independently.
	if dup, err := s.Once(ctx, "other", "ce-1", func(pgx.Tx) error { return nil }); err != nil || dup {
		t.Fatalf("other consumer: dup=%v err=%v", dup, err)
	}
}

func TestOnceFailedEffectLeavesNoTrace(t *testing.T) {
	db := pgtest.New(t)
	s := store.New(db.Pool)
	ctx := context.Background()
	boom := errors.New("boom")
	_, err := s.Once(ctx, "test", "ce-1", func(tx pgx.Tx) error {
		if _, err := store.CreateRun(ctx, tx, newRun("C1")); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want boom", err)
	}
	// Rolled back: the run is gone and the event is not marked processed,
	// so the broker's retry does the work.
	if _, err := store.ActiveRun(ctx, db.Pool, "T1", "C1"); !errors.Is(err, coffee.ErrRunNotFound) {
		t.Fatalf("run survived a rolled-back effect: %v", err)
	}
	if dup, err := s.Once(ctx, "test", "ce-1", func(pgx.Tx) error { return nil }); err != nil || dup {
		t.Fatalf("retry: dup=%v err=%v, want a fresh run", dup, err)
	}
}

// TestOneActiveRunPerChannelUnderConcurrency fires concurrent starts in one
// channel: the database, not a check-then-insert, lets exactly one win.
func TestOneActiveRunPerChannelUnderConcurrency(t *testing.T) {
	db := pgtest.New(t)
	s := store.New(db.Pool)
	ctx := context.Background()
	const n = 12
	var wg sync.WaitGroup
	ids := make([]string, n)
	created := make([]bool, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = s.Once(ctx, "test", "ce-"+string(rune('a'+i)), func(tx pgx.Tx) error {
				run, err := store.CreateRun(ctx, tx, newRun("C1"))
				if err != nil && !errors.Is(err, coffee.ErrRunActive) {
					return err
				}
				ids[i], created[i] = run.ID.String(), err == nil
				return nil
			})
		}()
	}
	wg.Wait()
	winners := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("start %d: %v", i, errs[i])
		}
		if created[i] {
			winners++
		}
		if ids[i] != ids[0] {
			t.Errorf("start %d saw run %s, start 0 saw %s", i, ids[i], ids[0])
		}
	}
	if winners != 1 {
		t.Fatalf("%d runs created, want exactly 1", winners)
	}
	var count int
	db.Pool.QueryRow(ctx, `SELECT count(*) FROM coffee_runs`).Scan(&count)
	if count != 1 {
		t.Fatalf("%d rows, want 1", count)
	}
	// Another channel is independent.
	if _, err := s.Once(ctx, "test", "ce-other", func(tx pgx.Tx) error {
		_, err := store.CreateRun(ctx, tx, newRun("C2"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
}

func TestRunQueries(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	var run coffee.Run
	// Slack ids are opaque strings: metacharacters are stored verbatim.
	weird := `C1'; DROP TABLE coffee_runs; --`
	err := pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
		var err error
		run, err = store.CreateRun(ctx, tx, newRun(weird))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := store.GetRun(ctx, db.Pool, run.ID)
	if err != nil || got.ChannelID != weird || got.Status != coffee.StatusActive || got.LastCallAt.Location() != time.UTC {
		t.Fatalf("GetRun = %+v, %v", got, err)
	}
	if err := store.SetRunMessage(ctx, db.Pool, run.ID, "1700000000.000100"); err != nil {
		t.Fatal(err)
	}
	got, _ = store.ActiveRun(ctx, db.Pool, "T1", weird)
	if got.SlackMessageTS != "1700000000.000100" {
		t.Fatalf("ts = %q", got.SlackMessageTS)
	}
	if _, err := store.ActiveRun(ctx, db.Pool, "T1", "C-none"); !errors.Is(err, coffee.ErrRunNotFound) {
		t.Fatalf("ActiveRun on an empty channel: %v", err)
	}
	if err := store.UpsertUser(ctx, db.Pool, "T1", "U1", "alice"); err != nil {
		t.Fatal(err)
	}
	if err := store.UpsertUser(ctx, db.Pool, "T1", "U1", "Alice B."); err != nil {
		t.Fatal(err)
	}
	var name string
	db.Pool.QueryRow(ctx, `SELECT display_name FROM users WHERE user_id = 'U1'`).Scan(&name)
	if name != "Alice B." {
		t.Fatalf("display name = %q", name)
	}
}
