package runmsg_test

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coffeebuddy/coffeebuddy/shared/coffee"
	"github.com/coffeebuddy/coffeebuddy/shared/functest"
	"github.com/coffeebuddy/coffeebuddy/shared/postgres/pgtest"
	"github.com/coffeebuddy/coffeebuddy/shared/runmsg"
	"github.com/coffeebuddy/coffeebuddy/shared/slackstandin"
	"github.com/coffeebuddy/coffeebuddy/shared/store"
	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// TestRefreshesOfARunAreSerialised: a refresh whose chat.update is slow
// holds the run's lock; a refresh after a change waits for it, reads the
// new state and updates last, so Slack ends showing the newest render.
// Without the lock the second update would overtake the first and the
// older render would land on top.
func TestRefreshesOfARunAreSerialised(t *testing.T) {
	db := pgtest.New(t)
	sl, clients := functest.Slack(t)
	ctx := context.Background()
	now := time.Now()
	run := functest.StartRun(t, db.Pool, store.NewRun{TeamID: "T1", ChannelID: "C1", InitiatorUserID: "U1",
		LastCallAt: now.Add(10 * time.Minute), CreatedAt: now})
	functest.Announce(t, db.Pool, clients, run)
	order := func(user, drink string) {
		functest.Tx(t, db.Pool, func(tx pgx.Tx) error {
			_, _, err := store.PlaceOrder(ctx, tx, "T1", "C1", coffee.Order{UserID: user, Drink: drink, Size: "small"}, now)
			return err
		})
	}
	order("U2", "latte")

	entered, release := make(chan struct{}), make(chan struct{})
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(unblock) // a failing test must not leave the stand-in blocked
	var calls, inFlight atomic.Int32
	var overtaken atomic.Bool
	sl.SetFault("chat.update", func(slackstandin.Call) (int, time.Duration, bool) {
		if inFlight.Add(1) > 1 {
			overtaken.Store(true)
		}
		defer inFlight.Add(-1)
		if calls.Add(1) == 1 {
			close(entered)
			<-release // the first update is slow
		}
		return 0, 0, false // then let it through
	})

	var wg sync.WaitGroup
	errs := make(chan error, 2)
	refresh := func() {
		defer wg.Done()
		_, err := runmsg.Refresh(ctx, db.Pool, clients, run.ID)
		errs <- err
	}
	wg.Add(1)
	go refresh() // renders one order, then waits in Slack
	<-entered
	order("U3", "mocha") // the run changes meanwhile
	wg.Add(1)
	go refresh()
	// The second refresh must now be waiting for the lock, not in Slack.
	deadline := time.Now().Add(20 * time.Second)
	for functest.Count(t, db.Pool, `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted`) != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the second refresh never waited for the run's lock")
		}
		time.Sleep(10 * time.Millisecond)
	}
	unblock()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if overtaken.Load() || calls.Load() != 2 {
		t.Fatalf("%d chat.update calls, overtaken=%v; want 2, one after the other", calls.Load(), overtaken.Load())
	}
	msg := sl.Messages("C1")[0]
	if !strings.Contains(string(msg.Blocks), "Orders (2)") {
		t.Fatalf("the run message ends with an older render: %s", msg.Blocks)
	}
}
