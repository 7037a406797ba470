package devstack_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/coffeebuddy/coffeebuddy/eventing/devstack"
	"github.com/coffeebuddy/coffeebuddy/shared/blocks"
	"github.com/jackc/pgx/v5/pgxpool"
)

var (
	alice = devstack.User{ID: "U0ALICE", Name: "alice"}
	bob   = devstack.User{ID: "U0BOB", Name: "bob"}
	carol = devstack.User{ID: "U0CAROL", Name: "carol"}
	dave  = devstack.User{ID: "U0DAVE", Name: "dave"}
)

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func count(t *testing.T, db *pgxpool.Pool, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := db.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestJourneyWholeRun plays DESIGN.md §2 steps 1–3, 5, 6, 8 and 9 through
// every layer and checks what users see and what the database holds.
func TestJourneyWholeRun(t *testing.T) {
	s := startStack(t, nil)
	ctx := context.Background()
	p := devstack.NewPlayer(s, "C0JOURNEY")
	db := openDB(t, s.DatabaseURL)

	_, err := p.Command(ctx, alice, "/coffee", "10")
	must(t, err)
	msg, runID, err := p.RunMessage(ctx)
	must(t, err)

	// Orders, an edit, and hostile text.
	hostile := "<!channel> *bold* & <@U0EVE> '; DROP TABLE orders; --"
	_, err = p.Submit(ctx, alice, "latte", "large", "oat milk")
	must(t, err)
	submitted := time.Now()
	_, err = p.Order(ctx, bob, "mocha", "small", hostile)
	must(t, err)
	_, err = p.WaitEphemeral(ctx, bob, "Your order is in")
	must(t, err)
	// Reported, not asserted: performance belongs in benchmarks.
	t.Logf("bob's order confirmation arrived %s after he clicked Add my order", time.Since(submitted).Round(time.Millisecond))
	_, err = p.Order(ctx, carol, "cappuccino", "medium", "")
	must(t, err)
	_, err = p.Order(ctx, carol, "americano", "medium", "")
	must(t, err)
	_, err = p.WaitRunMessage(ctx, "Orders (3)")
	must(t, err)
	_, err = p.WaitRunMessage(ctx, "Medium Americano")
	must(t, err)
	_, err = p.WaitEphemeral(ctx, bob, "Your order is in")
	must(t, err)
	if n := count(t, db, `SELECT count(*) FROM orders WHERE run_id = $1`, runID); n != 3 {
		t.Fatalf("%d orders, want 3 (carol's edit replaces her first order)", n)
	}
	var stored string
	must(t, db.QueryRow(ctx, `SELECT customizations FROM orders WHERE user_id = 'U0BOB'`).Scan(&stored))
	if stored != hostile {
		t.Fatalf("customization stored as %q", stored)
	}
	// One run message, updated in place; no mrkdwn text carries the hostile string.
	top := 0
	for _, m := range p.Slack.Messages("C0JOURNEY") {
		if m.ThreadTS == "" {
			top++
			if strings.Contains(m.Text, "<!channel>") {
				t.Errorf("message text pings the channel: %q", m.Text)
			}
		}
	}
	if top != 1 || len(p.Slack.Calls("chat.update")) == 0 {
		t.Fatalf("%d top-level messages and %d chat.update calls; want 1 message updated in place", top, len(p.Slack.Calls("chat.update")))
	}

	// Volunteer; a stranger cannot close; the initiator can.
	must(t, p.Click(ctx, dave, msg, blocks.ActionVolunteer))
	_, err = p.WaitEphemeral(ctx, dave, "Thanks for volunteering")
	must(t, err)
	_, err = p.WaitRunMessage(ctx, "volunteered to go")
	must(t, err)
	must(t, p.Click(ctx, bob, msg, blocks.ActionCloseNow))
	_, err = p.WaitEphemeral(ctx, bob, "can close this run early")
	must(t, err)
	must(t, p.Click(ctx, alice, msg, blocks.ActionCloseNow))

	// The runner's DM: every order, totals, the button.
	dm, err := p.WaitDM(ctx, dave, blocks.ActionComplete)
	must(t, err)
	for _, want := range []string{"U0ALICE", "U0BOB", "U0CAROL", "Large Latte", "oat milk", "Medium Americano"} {
		if !strings.Contains(dm.Text+string(dm.Blocks), want) {
			t.Errorf("runner DM lacks %q", want)
		}
	}
	var status, runner string
	var reminded bool
	must(t, db.QueryRow(ctx, `SELECT status, runner_user_id, reminder_sent_at IS NOT NULL FROM coffee_runs WHERE id = $1`, runID).Scan(&status, &runner, &reminded))
	if status != "closed" || runner != dave.ID {
		t.Fatalf("run %s runner %s, want closed by dave", status, runner)
	}
	// Only the runner completes; a second click is harmless.
	must(t, p.Click(ctx, bob, dm, blocks.ActionComplete))
	_, err = p.WaitEphemeral(ctx, bob, "Only")
	must(t, err)
	must(t, p.Click(ctx, dave, dm, blocks.ActionComplete))
	done, err := p.WaitThread(ctx, msg.TS, "U0CAROL")
	must(t, err)
	for _, who := range []string{"U0ALICE", "U0BOB", "U0CAROL"} {
		if !strings.Contains(done.Text+string(done.Blocks), who) {
			t.Errorf("completion message does not tag %s", who)
		}
	}
	must(t, p.Click(ctx, dave, dm, blocks.ActionComplete))
	waitProcessed(t, db, "run-complete", 3)
	must(t, db.QueryRow(ctx, `SELECT status FROM coffee_runs WHERE id = $1`, runID).Scan(&status))
	if status != "completed" {
		t.Fatalf("status %s", status)
	}
	if n := count(t, db, `SELECT count(*) FROM audit_logs WHERE run_id = $1 AND event_type = 'run_completed'`, runID); n != 1 {
		t.Fatalf("%d run_completed audit rows, want 1", n)
	}

	// History answers in the command response.
	ans, err := p.Command(ctx, alice, "/coffee-history", "")
	must(t, err)
	if !strings.Contains(ans, "3 orders") || !strings.Contains(ans, "completed") {
		t.Fatalf("history: %s", ans)
	}
	// Nothing left behind in the outbox.
	deadline := time.Now().Add(10 * time.Second)
	for count(t, db, `SELECT count(*) FROM outbox WHERE published_at IS NULL`) > 0 {
		if time.Now().After(deadline) {
			t.Fatal("outbox rows left unpublished")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestJourneyLastCallByTick drives the timers through the PingSource tick:
// a warning shortly before last call, then the close with a fair runner,
// and a run nobody ordered in closing with a friendly note.
func TestJourneyLastCallByTick(t *testing.T) {
	s := startStack(t, nil)
	ctx := context.Background()
	p := devstack.NewPlayer(s, "C0TICK")
	db := openDB(t, s.DatabaseURL)

	_, err := p.Command(ctx, alice, "/coffee", "")
	must(t, err)
	msg, runID, err := p.RunMessage(ctx)
	must(t, err)
	_, err = p.Submit(ctx, alice, "espresso", "small", "")
	must(t, err)
	_, err = p.Order(ctx, bob, "latte", "medium", "")
	must(t, err)
	_, err = p.WaitRunMessage(ctx, "Orders (2)")
	must(t, err)

	// A minute before last call: the tick warns, once.
	_, err = db.Exec(ctx, `UPDATE coffee_runs SET last_call_at = now() + interval '1 minute' WHERE id = $1`, runID)
	must(t, err)
	must(t, s.Eventing().FirePing(ctx, "run-tick"))
	must(t, s.Eventing().FirePing(ctx, "run-tick"))
	_, err = p.WaitThread(ctx, msg.TS, "Last call")
	must(t, err)
	// carol opens the form but is too slow.
	before := len(p.Slack.Views(carol.ID))
	must(t, p.Click(ctx, carol, msg, blocks.ActionAddOrder))
	for deadline := time.Now().Add(10 * time.Second); len(p.Slack.Views(carol.ID)) == before; time.Sleep(25 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("carol's form never opened")
		}
	}
	// Last call passed: the tick closes and assigns.
	_, err = db.Exec(ctx, `UPDATE coffee_runs SET last_call_at = now() - interval '1 second' WHERE id = $1`, runID)
	must(t, err)
	must(t, s.Eventing().FirePing(ctx, "run-tick"))
	_, err = p.WaitThread(ctx, msg.TS, "runs in the last 30 days")
	must(t, err)
	var runner string
	must(t, db.QueryRow(ctx, `SELECT coalesce(runner_user_id, '') FROM coffee_runs WHERE id = $1`, runID).Scan(&runner))
	if runner != alice.ID { // both have 0 runs: the tie goes to the lower user id
		t.Fatalf("runner %q, want U0ALICE by tie-break", runner)
	}
	if n := count(t, db, `SELECT count(*) FROM audit_logs WHERE run_id = $1 AND event_type = 'last_call_warned'`, runID); n != 1 {
		t.Fatalf("%d warnings, want 1", n)
	}
	// carol's late order is refused inline, in her form.
	ans, err := p.Submit(ctx, carol, "latte", "small", "")
	must(t, err)
	if !strings.Contains(ans, `"response_action":"errors"`) || !strings.Contains(ans, "closed") {
		t.Fatalf("late order answer: %s", ans)
	}

	// A run nobody ordered in.
	q := devstack.NewPlayer(s, "C0EMPTY")
	_, err = q.Command(ctx, dave, "/coffee", "")
	must(t, err)
	emsg, eid, err := q.RunMessage(ctx)
	must(t, err)
	_, err = db.Exec(ctx, `UPDATE coffee_runs SET last_call_at = now() - interval '1 second' WHERE id = $1`, eid)
	must(t, err)
	must(t, s.Eventing().FirePing(ctx, "run-tick"))
	_, err = q.WaitThread(ctx, emsg.TS, "Nobody ordered")
	must(t, err)
	if n := len(p.Slack.Messages(p.Slack.DMChannel(dave.ID))); n != 0 {
		t.Fatalf("dave got %d DMs for an empty run", n)
	}
}

// TestJourneyCancel: only the initiator or runner cancels; everyone who
// ordered is told in the thread; the reason pings nobody.
func TestJourneyCancel(t *testing.T) {
	s := startStack(t, nil)
	ctx := context.Background()
	p := devstack.NewPlayer(s, "C0CANCEL")
	db := openDB(t, s.DatabaseURL)

	_, err := p.Command(ctx, alice, "/coffee-cancel", "")
	must(t, err)
	_, err = p.WaitEphemeral(ctx, alice, "no coffee run to cancel")
	must(t, err)
	_, err = p.Command(ctx, alice, "/coffee", "")
	must(t, err)
	msg, runID, err := p.RunMessage(ctx)
	must(t, err)
	_, err = p.Order(ctx, bob, "mocha", "large", "")
	must(t, err)
	_, err = p.WaitRunMessage(ctx, "Orders (1)")
	must(t, err)
	_, err = p.Command(ctx, bob, "/coffee-cancel", "")
	must(t, err)
	_, err = p.WaitEphemeral(ctx, bob, "can cancel this run")
	must(t, err)
	_, err = p.Command(ctx, alice, "/coffee-cancel", "rain <!here>")
	must(t, err)
	notice, err := p.WaitThread(ctx, msg.TS, "cancelled")
	must(t, err)
	if !strings.Contains(notice.Text+string(notice.Blocks), "U0BOB") {
		t.Errorf("cancel notice does not tell bob: %s", notice.Text)
	}
	if strings.Contains(notice.Text, "<!here>") {
		t.Errorf("cancel reason pings: %q", notice.Text)
	}
	var status, reason string
	must(t, db.QueryRow(ctx, `SELECT status, cancel_reason FROM coffee_runs WHERE id = $1`, runID).Scan(&status, &reason))
	if status != "cancelled" || reason != "rain <!here>" {
		t.Fatalf("run %s reason %q", status, reason)
	}
}

// TestJourneyMyUsualAndReminder: My usual re-orders the favourite in one
// click (and says so when there is none); a runner who does nothing gets a
// reminder DM after COFFEE_REMIND_AFTER, driven by the tick.
func TestJourneyMyUsualAndReminder(t *testing.T) {
	s := startStack(t, map[string]string{"COFFEE_REMIND_AFTER": "1s"})
	ctx := context.Background()
	p := devstack.NewPlayer(s, "C0USUAL")
	db := openDB(t, s.DatabaseURL)

	// Run 1: bob orders twice the same thing, so it becomes his usual.
	_, err := p.Command(ctx, alice, "/coffee", "")
	must(t, err)
	msg, runID, err := p.RunMessage(ctx)
	must(t, err)
	must(t, p.Click(ctx, carol, msg, blocks.ActionMyUsual))
	_, err = p.WaitEphemeral(ctx, carol, "don't have a usual yet")
	must(t, err)
	_, err = p.Order(ctx, bob, "cappuccino", "large", "no foam")
	must(t, err)
	_, err = p.WaitRunMessage(ctx, "Orders (1)")
	must(t, err)
	must(t, p.Click(ctx, alice, msg, blocks.ActionCloseNow))
	_, err = p.WaitDM(ctx, bob, blocks.ActionComplete)
	must(t, err)

	// The tick reminds the runner once the reminder time has passed.
	_, err = db.Exec(ctx, `UPDATE coffee_runs SET reminder_sent_at = now() - interval '1 minute' WHERE id = $1`, runID)
	must(t, err)
	must(t, s.Eventing().FirePing(ctx, "run-tick"))
	deadline := time.Now().Add(20 * time.Second)
	for count(t, db, `SELECT count(*) FROM audit_logs WHERE run_id = $1 AND event_type = 'runner_reminded'`, runID) != 1 {
		if time.Now().After(deadline) {
			t.Fatal("no reminder DM recorded")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := len(p.Slack.Messages(p.Slack.DMChannel(bob.ID))); n != 2 {
		t.Fatalf("bob has %d DMs, want the assignment and one reminder", n)
	}

	// Run 2: My usual places bob's favourite in one click, customization included.
	_, err = p.Command(ctx, alice, "/coffee", "")
	must(t, err)
	var msg2 = msg
	for deadline := time.Now().Add(20 * time.Second); msg2.TS == msg.TS; {
		if time.Now().After(deadline) {
			t.Fatal("second run message never posted")
		}
		msg2, _, err = p.RunMessage(ctx)
		must(t, err)
		time.Sleep(25 * time.Millisecond)
	}
	must(t, p.Click(ctx, bob, msg2, blocks.ActionMyUsual))
	_, err = p.WaitEphemeral(ctx, bob, "Your usual is in")
	must(t, err)
	_, err = p.WaitRunMessage(ctx, "Large Cappuccino (no foam)")
	must(t, err)

	// The daily purge tick forgets preferences untouched for 90 days, and
	// only those.
	_, err = db.Exec(ctx, `INSERT INTO user_preferences (user_id, drink, size, order_count, last_ordered_at)
		VALUES ('U0GONE', 'mocha', 'small', 4, now() - interval '91 days')`)
	must(t, err)
	must(t, s.Eventing().FirePing(ctx, "prefs-purge-tick"))
	deadline = time.Now().Add(20 * time.Second)
	for count(t, db, `SELECT count(*) FROM user_preferences WHERE user_id = 'U0GONE'`) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the purge tick left a 91-day-old preference")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := count(t, db, `SELECT count(*) FROM user_preferences WHERE user_id = $1`, bob.ID); n == 0 {
		t.Fatal("the purge removed a fresh preference")
	}
}
