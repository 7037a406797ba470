package store_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coffeebuddy/coffeebuddy/shared/coffee"
	"github.com/coffeebuddy/coffeebuddy/shared/postgres/pgtest"
	"github.com/coffeebuddy/coffeebuddy/shared/store"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// world drives the store through whole runs with an explicit clock.
type world struct {
	t   *testing.T
	db  *pgxpool.Pool
	now time.Time
}

func newWorld(t *testing.T) *world {
	return &world{t: t, db: pgtest.New(t).Pool, now: time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)}
}

func (w *world) tx(fn func(tx pgx.Tx) error) {
	w.t.Helper()
	if err := pgx.BeginFunc(context.Background(), w.db, fn); err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) start(channel, initiator string) coffee.Run {
	w.t.Helper()
	var run coffee.Run
	w.tx(func(tx pgx.Tx) error {
		var err error
		run, err = store.CreateRun(context.Background(), tx, store.NewRun{TeamID: "T1", ChannelID: channel,
			InitiatorUserID: initiator, LastCallAt: w.now.Add(10 * time.Minute), CreatedAt: w.now})
		return err
	})
	return run
}

func (w *world) order(channel, user, drink, size, custom string) (coffee.Order, bool, error) {
	var o coffee.Order
	var edited bool
	err := pgx.BeginFunc(context.Background(), w.db, func(tx pgx.Tx) error {
		var err error
		o, edited, err = store.PlaceOrder(context.Background(), tx, "T1", channel,
			coffee.Order{UserID: user, Drink: drink, Size: size, Customizations: custom}, w.now)
		return err
	})
	return o, edited, err
}

func (w *world) close(id uuid.UUID) (coffee.Run, coffee.Assignment) {
	w.t.Helper()
	var run coffee.Run
	var a coffee.Assignment
	w.tx(func(tx pgx.Tx) error {
		var err error
		run, a, err = store.CloseRun(context.Background(), tx, id, w.now)
		return err
	})
	return run, a
}

func (w *world) complete(id uuid.UUID, user string) error {
	return pgx.BeginFunc(context.Background(), w.db, func(tx pgx.Tx) error {
		_, err := store.CompleteRun(context.Background(), tx, id, user, w.now)
		return err
	})
}

func TestOrderEditingAndPreferences(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	run := w.start("C1", "U1")
	if _, edited, err := w.order("C1", "U2", "latte", "large", "oat milk"); err != nil || edited {
		t.Fatalf("first order: edited=%v err=%v", edited, err)
	}
	o, edited, err := w.order("C1", "U2", "mocha", "small", `<!channel> *bold* '; DROP TABLE orders; --`)
	if err != nil || !edited {
		t.Fatalf("edit: edited=%v err=%v", edited, err)
	}
	orders, err := store.RunOrders(ctx, w.db, run.ID)
	if err != nil || len(orders) != 1 || orders[0].Drink != "mocha" || orders[0].Customizations != o.Customizations {
		t.Fatalf("orders after edit: %+v %v", orders, err)
	}
	prefs, _ := store.Preferences(ctx, w.db, "U2")
	if len(prefs) != 1 || prefs[0].Drink != "mocha" || prefs[0].OrderCount != 1 {
		t.Fatalf("an edit should move the count, not add one: %+v", prefs)
	}
	// Past last call, orders are refused.
	w.now = run.LastCallAt
	if _, _, err := w.order("C1", "U3", "latte", "small", ""); !errors.Is(err, coffee.ErrRunClosed) {
		t.Fatalf("order at last call: %v, want ErrRunClosed", err)
	}
	if _, _, err := w.order("C-none", "U3", "latte", "small", ""); !errors.Is(err, coffee.ErrRunClosed) {
		t.Fatalf("order with no run: %v, want ErrRunClosed", err)
	}
}

func TestFavouriteAndRecentOrders(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	if _, _, ok, _ := store.Favourite(ctx, w.db, "U1"); ok {
		t.Fatal("a new user has a favourite")
	}
	for i, d := range []string{"latte", "mocha", "latte", "espresso"} {
		run := w.start(fmt.Sprintf("C%d", i), "U9")
		if _, _, err := w.order(run.ChannelID, "U1", d, "medium", ""); err != nil {
			t.Fatal(err)
		}
		w.now = w.now.Add(time.Hour)
	}
	drink, size, ok, err := store.Favourite(ctx, w.db, "U1")
	if err != nil || !ok || drink != "latte" || size != "medium" {
		t.Fatalf("favourite = %s %s %v %v", drink, size, ok, err)
	}
	recent, err := store.RecentOrders(ctx, w.db, "U1", 3)
	if err != nil || len(recent) != 3 || recent[0].Drink != "espresso" || recent[2].Drink != "mocha" {
		t.Fatalf("recent = %+v %v", recent, err)
	}
}

// TestConcurrentOrdersKeepCountsExact fires many orders from one user into
// many runs at once; the preference counts must add up exactly.
func TestConcurrentOrdersKeepCountsExact(t *testing.T) {
	w := newWorld(t)
	const runs = 40
	for i := range runs {
		w.start(fmt.Sprintf("C%02d", i), "U9")
	}
	var wg sync.WaitGroup
	errs := make(chan error, runs)
	for i := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			drink := []string{"latte", "mocha"}[i%2]
			if _, _, err := w.order(fmt.Sprintf("C%02d", i), "U1", drink, "small", ""); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	prefs, _ := store.Preferences(context.Background(), w.db, "U1")
	got := map[string]int{}
	for _, p := range prefs {
		got[p.Drink] = p.OrderCount
	}
	if got["latte"] != runs/2 || got["mocha"] != runs/2 {
		t.Fatalf("counts %v, want %d each", got, runs/2)
	}
}

func TestCloseAssignsFairlyAndExplains(t *testing.T) {
	w := newWorld(t)
	// U2 has run twice recently, U3 once, U1 never.
	for _, runner := range []string{"U2", "U2", "U3"} {
		r := w.start("C-old", runner)
		w.order("C-old", runner, "latte", "small", "")
		w.close(r.ID)
		if err := w.complete(r.ID, runner); err != nil {
			t.Fatal(err)
		}
		w.now = w.now.Add(time.Hour)
	}
	run := w.start("C1", "U2")
	for _, u := range []string{"U1", "U2", "U3"} {
		w.order("C1", u, "latte", "small", "")
	}
	closed, a := w.close(run.ID)
	if a.RunnerUserID != "U1" || closed.RunnerUserID != "U1" || closed.Status != coffee.StatusClosed {
		t.Fatalf("assignment %+v, run %+v", a, closed)
	}
	if a.Reason != "0 runs in the last 30 days; team median 1" {
		t.Fatalf("reason %q", a.Reason)
	}
	// Closing again is a no-op the caller can recognise.
	err := pgx.BeginFunc(context.Background(), w.db, func(tx pgx.Tx) error {
		_, _, err := store.CloseRun(context.Background(), tx, run.ID, w.now)
		return err
	})
	if !store.IsDone(err) {
		t.Fatalf("second close: %v", err)
	}
}

func TestVolunteerWinsAndEmptyRunClosesWithoutRunner(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	run := w.start("C1", "U1")
	w.order("C1", "U1", "latte", "small", "")
	w.order("C1", "U2", "latte", "small", "")
	w.tx(func(tx pgx.Tx) error {
		_, changed, err := store.SetVolunteer(ctx, tx, run.ID, "U9")
		if !changed {
			t.Error("first volunteer not recorded")
		}
		return err
	})
	w.tx(func(tx pgx.Tx) error {
		r, changed, err := store.SetVolunteer(ctx, tx, run.ID, "U8")
		if changed || r.VolunteerUserID != "U9" {
			t.Errorf("second volunteer replaced the first: %+v", r)
		}
		return err
	})
	if _, a := w.close(run.ID); a.RunnerUserID != "U9" || !a.Volunteer {
		t.Fatalf("volunteer lost: %+v", a)
	}
	empty := w.start("C2", "U1")
	if closed, a := w.close(empty.ID); a.RunnerUserID != "" || closed.RunnerUserID != "" || closed.Status != coffee.StatusClosed {
		t.Fatalf("empty run: %+v %+v", closed, a)
	}
}

func TestCompleteOnlyByRunner(t *testing.T) {
	w := newWorld(t)
	run := w.start("C1", "U1")
	w.order("C1", "U1", "latte", "small", "")
	closed, _ := w.close(run.ID)
	if err := w.complete(run.ID, "U-someone-else"); !errors.Is(err, coffee.ErrNotRunner) {
		t.Fatalf("stranger: %v", err)
	}
	if err := w.complete(run.ID, closed.RunnerUserID); err != nil {
		t.Fatal(err)
	}
	if err := w.complete(run.ID, closed.RunnerUserID); !errors.Is(err, coffee.ErrAlreadyCompleted) {
		t.Fatalf("second click: %v", err)
	}
}

func TestCancelRules(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	cancel := func(user string) error {
		return pgx.BeginFunc(ctx, w.db, func(tx pgx.Tx) error {
			_, err := store.CancelRun(ctx, tx, "T1", "C1", user, "rain <!here>", w.now)
			return err
		})
	}
	if err := cancel("U1"); !errors.Is(err, coffee.ErrRunNotFound) {
		t.Fatalf("no run: %v", err)
	}
	run := w.start("C1", "U1")
	w.order("C1", "U2", "latte", "small", "")
	if err := cancel("U2"); !errors.Is(err, coffee.ErrNotAllowed) {
		t.Fatalf("orderer cancelling: %v", err)
	}
	closed, _ := w.close(run.ID)
	if err := cancel(closed.RunnerUserID); err != nil {
		t.Fatalf("runner cancelling: %v", err)
	}
	var reason string
	w.db.QueryRow(ctx, `SELECT cancel_reason FROM coffee_runs WHERE id = $1`, run.ID).Scan(&reason)
	if reason != "rain <!here>" {
		t.Fatalf("reason stored as %q", reason)
	}
	w.now = w.now.Add(time.Hour)
	done := w.start("C1", "U1")
	w.order("C1", "U1", "latte", "small", "")
	w.close(done.ID)
	w.complete(done.ID, "U1")
	if err := cancel("U1"); !errors.Is(err, coffee.ErrAlreadyCompleted) {
		t.Fatalf("cancel after completion: %v", err)
	}
}

func TestHistoryPages(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	if _, err := w.db.Exec(ctx, `INSERT INTO users (user_id, team_id, display_name) VALUES ('U1', 'T1', 'Alice')`); err != nil {
		t.Fatal(err)
	}
	for i := range 12 {
		r := w.start("C1", "U1")
		for j := range i % 3 {
			w.order("C1", fmt.Sprintf("U%d", j+1), "latte", "small", "")
		}
		w.close(r.ID)
		w.now = w.now.Add(time.Hour)
	}
	page1, total, err := store.History(ctx, w.db, "T1", "C1", 1, 10)
	if err != nil || total != 12 || len(page1) != 10 {
		t.Fatalf("page 1: %d entries of %d (%v)", len(page1), total, err)
	}
	if !page1[0].CreatedAt.After(page1[1].CreatedAt) {
		t.Fatal("history not newest first")
	}
	if page1[0].Orders != 11%3 || page1[0].RunnerName != "Alice" {
		t.Fatalf("newest entry %+v", page1[0])
	}
	page2, _, _ := store.History(ctx, w.db, "T1", "C1", 2, 10)
	if len(page2) != 2 {
		t.Fatalf("page 2 has %d", len(page2))
	}
	empty, total, _ := store.History(ctx, w.db, "T1", "C-none", 1, 10)
	if len(empty) != 0 || total != 0 {
		t.Fatal("history of an empty channel")
	}
}

func TestTickClaims(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	soon := w.start("C1", "U1") // last call at +10m
	w.now = w.now.Add(8 * time.Minute)
	var warned []coffee.Run
	w.tx(func(tx pgx.Tx) (err error) { warned, err = store.ClaimWarnings(ctx, tx, w.now, 2*time.Minute); return })
	if len(warned) != 1 || warned[0].ID != soon.ID {
		t.Fatalf("warned %v", warned)
	}
	w.tx(func(tx pgx.Tx) (err error) { warned, err = store.ClaimWarnings(ctx, tx, w.now, 2*time.Minute); return })
	if len(warned) != 0 {
		t.Fatal("a run was warned twice")
	}
	if due, _ := store.DueRuns(ctx, w.db, w.now, 10); len(due) != 0 {
		t.Fatal("run due before last call")
	}
	w.order("C1", "U1", "latte", "small", "")
	w.now = w.now.Add(2 * time.Minute)
	due, _ := store.DueRuns(ctx, w.db, w.now, 10)
	if len(due) != 1 {
		t.Fatalf("due %v", due)
	}
	w.close(soon.ID)
	if err := store.MarkRunnerDMed(ctx, w.db, soon.ID, w.now); err != nil {
		t.Fatal(err)
	}
	var rem []coffee.Run
	w.tx(func(tx pgx.Tx) (err error) {
		rem, err = store.ClaimReminders(ctx, tx, w.now.Add(10*time.Minute), 15*time.Minute, 1)
		return
	})
	if len(rem) != 0 {
		t.Fatal("reminder before its time")
	}
	w.tx(func(tx pgx.Tx) (err error) {
		rem, err = store.ClaimReminders(ctx, tx, w.now.Add(16*time.Minute), 15*time.Minute, 1)
		return
	})
	if len(rem) != 1 {
		t.Fatal("no reminder when due")
	}
	w.tx(func(tx pgx.Tx) (err error) {
		rem, err = store.ClaimReminders(ctx, tx, w.now.Add(60*time.Minute), 15*time.Minute, 1)
		return
	})
	if len(rem) != 0 {
		t.Fatal("more reminders than the maximum")
	}
}

// TestClaimsOfOneRun: a run timer claims its own run's moment only.
func TestClaimsOfOneRun(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	a, b := w.start("C1", "U1"), w.start("C2", "U1") // both last call at +10m
	w.now = w.now.Add(9 * time.Minute)
	var warned []coffee.Run
	w.tx(func(tx pgx.Tx) (err error) {
		warned, err = store.ClaimWarnings(ctx, tx, w.now, 2*time.Minute, b.ID)
		return
	})
	if len(warned) != 1 || warned[0].ID != b.ID {
		t.Fatalf("warned %v, want only %s", warned, b.ID)
	}
	w.tx(func(tx pgx.Tx) (err error) { warned, err = store.ClaimWarnings(ctx, tx, w.now, 2*time.Minute); return })
	if len(warned) != 1 || warned[0].ID != a.ID {
		t.Fatalf("the tick warned %v, want only %s", warned, a.ID)
	}
	for _, id := range []uuid.UUID{a.ID, b.ID} {
		w.order(map[uuid.UUID]string{a.ID: "C1", b.ID: "C2"}[id], "U2", "latte", "small", "")
	}
	w.now = w.now.Add(time.Minute)
	w.close(a.ID)
	w.close(b.ID)
	for _, id := range []uuid.UUID{a.ID, b.ID} {
		if err := store.MarkRunnerDMed(ctx, w.db, id, w.now); err != nil {
			t.Fatal(err)
		}
	}
	var rem []coffee.Run
	w.tx(func(tx pgx.Tx) (err error) {
		rem, err = store.ClaimReminders(ctx, tx, w.now.Add(16*time.Minute), 15*time.Minute, 1, a.ID)
		return
	})
	if len(rem) != 1 || rem[0].ID != a.ID {
		t.Fatalf("reminded %v, want only %s", rem, a.ID)
	}
}

// TestCurrentOrderAndAbandon: a user's order in the channel's active run
// (for changing it); an abandoned run frees its channel, cancelled by
// nobody.
func TestCurrentOrderAndAbandon(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	run := w.start("C1", "U1")
	if _, err := store.CurrentOrder(ctx, w.db, "T1", "C1", "U2"); !errors.Is(err, coffee.ErrRunNotFound) {
		t.Fatalf("before ordering: %v, want ErrRunNotFound", err)
	}
	if _, _, err := w.order("C1", "U2", "mocha", "large", "oat milk"); err != nil {
		t.Fatal(err)
	}
	o, err := store.CurrentOrder(ctx, w.db, "T1", "C1", "U2")
	if err != nil || o.Drink != "mocha" || o.Size != "large" || o.Customizations != "oat milk" || o.RunID != run.ID {
		t.Fatalf("current order %+v (%v)", o, err)
	}
	if _, err := store.CurrentOrder(ctx, w.db, "T1", "C2", "U2"); !errors.Is(err, coffee.ErrRunNotFound) {
		t.Fatalf("another channel: %v, want ErrRunNotFound", err)
	}
	w.tx(func(tx pgx.Tx) error {
		got, err := store.AbandonRun(ctx, tx, run.ID, "cannot post", w.now)
		if err == nil && got.Status != coffee.StatusCancelled {
			t.Errorf("abandoned run is %s", got.Status)
		}
		return err
	})
	var by *string
	var reason string
	if err := w.db.QueryRow(ctx, `SELECT cancelled_by, cancel_reason FROM coffee_runs WHERE id = $1`, run.ID).Scan(&by, &reason); err != nil ||
		by != nil || reason != "cannot post" {
		t.Fatalf("cancelled_by %v reason %q (%v)", by, reason, err)
	}
	if _, err := store.CurrentOrder(ctx, w.db, "T1", "C1", "U2"); !errors.Is(err, coffee.ErrRunNotFound) {
		t.Fatalf("after abandoning: %v, want ErrRunNotFound", err)
	}
	err = pgx.BeginFunc(ctx, w.db, func(tx pgx.Tx) error {
		_, err := store.AbandonRun(ctx, tx, run.ID, "again", w.now)
		return err
	})
	if !errors.Is(err, coffee.ErrNotActive) {
		t.Fatalf("abandoning twice: %v, want ErrNotActive", err)
	}
	if next := w.start("C1", "U1"); next.ID == run.ID {
		t.Fatal("the channel is still held")
	}
}

// TestFairnessOver100Runs simulates 100 runs among 10 users: six always
// order, four sometimes. The spread of completed runs among the always-
// present users stays within one run; cancelled runs do not count; an
// initiator who has not ordered in 14 days is not drafted.
func TestFairnessOver100Runs(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	always := []string{"U00", "U01", "U02", "U03", "U04", "U05"}
	sometimes := []string{"U06", "U07", "U08", "U09"}
	for i := range 100 {
		initiator := always[i%len(always)]
		if i%10 == 9 {
			initiator = "U-lurker" // never orders: never a candidate
		}
		run := w.start("C1", initiator)
		for _, u := range always {
			if _, _, err := w.order("C1", u, "latte", "small", ""); err != nil {
				t.Fatal(err)
			}
		}
		for _, u := range sometimes {
			if rng.IntN(3) == 0 {
				w.order("C1", u, "mocha", "large", "")
			}
		}
		_, a := w.close(run.ID)
		if a.RunnerUserID == "U-lurker" {
			t.Fatalf("run %d: an initiator who never orders was drafted", i)
		}
		w.now = w.now.Add(30 * time.Minute)
		if i%7 == 3 { // some runs are cancelled: they must not count
			w.tx(func(tx pgx.Tx) error {
				_, err := store.CancelRun(ctx, tx, "T1", "C1", a.RunnerUserID, "", w.now)
				return err
			})
		} else if err := w.complete(run.ID, a.RunnerUserID); err != nil {
			t.Fatal(err)
		}
		w.now = w.now.Add(2 * time.Hour)
	}
	counts := map[string]int{}
	rows, _ := w.db.Query(ctx, `SELECT runner_user_id, count(*) FROM coffee_runs WHERE status = 'completed' GROUP BY 1`)
	for rows.Next() {
		var u string
		var n int
		rows.Scan(&u, &n)
		counts[u] = n
	}
	var alwaysCounts []int
	for _, u := range always {
		alwaysCounts = append(alwaysCounts, counts[u])
	}
	lo, hi := alwaysCounts[0], alwaysCounts[0]
	for _, c := range alwaysCounts {
		lo, hi = min(lo, c), max(hi, c)
	}
	t.Logf("completed runs: %v; always-present spread %d, stddev %.2f", counts, hi-lo, coffee.StdDev(alwaysCounts))
	if hi-lo > 1 {
		t.Fatalf("spread among always-present users is %d (counts %v), want ≤ 1", hi-lo, alwaysCounts)
	}
	if strings.Contains(fmt.Sprint(counts), "U-lurker") {
		t.Fatal("the lurker ran")
	}
}
