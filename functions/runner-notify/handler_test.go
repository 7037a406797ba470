package main

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
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
	"github.com/coffeebuddy/coffeebuddy/shared/kafka/kafkatest"
	"github.com/coffeebuddy/coffeebuddy/shared/postgres/pgtest"
	"github.com/coffeebuddy/coffeebuddy/shared/slackapi"
	"github.com/coffeebuddy/coffeebuddy/shared/slackonce/slackoncetest"
	"github.com/coffeebuddy/coffeebuddy/shared/slackstandin"
	"github.com/coffeebuddy/coffeebuddy/shared/store"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

var clock = time.Date(2026, 11, 21, 9, 30, 0, 0, time.UTC)

const hostile = "<!channel> *bold* & <@U0EVE>"

type rig struct {
	t       *testing.T
	db      *pgtest.DB
	slack   *slackstandin.Server
	clients *slackapi.Clients
	h       *Handler
	run     coffee.Run
	ts      string
}

func newRig(t *testing.T) *rig {
	t.Helper()
	db := pgtest.New(t)
	sl, clients := functest.Slack(t)
	relay := functest.Relay(t, db.Pool, kafkatest.New(t))
	return &rig{t: t, db: db, slack: sl, clients: clients, h: New(store.New(db.Pool), clients, relay, func() time.Time { return clock })}
}

func (r *rig) tx(fn func(tx pgx.Tx) error) {
	r.t.Helper()
	functest.Tx(r.t, r.db.Pool, fn)
}

// start opens a run in channel at `at` with one order per orderer.
func (r *rig) start(channel string, at time.Time, orders ...coffee.Order) coffee.Run {
	r.t.Helper()
	ctx := context.Background()
	run := functest.StartRun(r.t, r.db.Pool, store.NewRun{TeamID: "T1", ChannelID: channel, InitiatorUserID: "U1",
		LastCallAt: at.Add(10 * time.Minute), CreatedAt: at})
	r.tx(func(tx pgx.Tx) error {
		for _, o := range orders {
			if _, _, err := store.PlaceOrder(ctx, tx, "T1", channel, o, at); err != nil {
				return err
			}
		}
		return nil
	})
	return run
}

// history gives user n completed runs in the last 30 days.
func (r *rig) history(user string, n int) {
	ctx := context.Background()
	for i := range n {
		at := clock.Add(-time.Duration(24*(i+1)) * time.Hour)
		run := r.start(fmt.Sprintf("C-%s-%d", user, i), at, coffee.Order{UserID: user, Drink: "latte", Size: "small"})
		r.tx(func(tx pgx.Tx) error {
			if _, _, err := store.CloseRun(ctx, tx, run.ID, at.Add(10*time.Minute)); err != nil {
				return err
			}
			_, err := store.CompleteRun(ctx, tx, run.ID, user, at.Add(30*time.Minute))
			return err
		})
	}
}

// openRun starts the run under test in C1 (initiator U1), posts its
// message as run-announce does, and takes orders.
func (r *rig) openRun(orders ...coffee.Order) {
	r.t.Helper()
	r.run = r.start("C1", clock.Add(-10*time.Minute), orders...)
	r.ts = functest.Announce(r.t, r.db.Pool, r.clients, r.run)
}

// closeRun closes the run under test as closing.Close does and returns the
// run.closed event it would publish.
func (r *rig) closeRun(ceID, closedBy string) event.Event {
	r.t.Helper()
	var a coffee.Assignment
	r.tx(func(tx pgx.Tx) error {
		var err error
		_, a, err = store.CloseRun(context.Background(), tx, r.run.ID, clock)
		return err
	})
	return r.closed(ceID, events.RunClosed{RunID: r.run.ID.String(), RunnerUserID: a.RunnerUserID, Reason: a.Reason, ClosedBy: closedBy})
}

func (r *rig) closed(ceID string, rc events.RunClosed) event.Event {
	return functest.Event(ceID, events.TypeRunClosed, "/coffeebuddy/run-tick", rc)
}

func (r *rig) handle(e event.Event) {
	r.t.Helper()
	if _, err := r.h.Handle(context.Background(), e); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rig) current() coffee.Run {
	r.t.Helper()
	run, err := store.GetRun(context.Background(), r.db.Pool, r.run.ID)
	if err != nil {
		r.t.Fatal(err)
	}
	return run
}

func (r *rig) count(sql string, args ...any) int {
	r.t.Helper()
	return functest.Count(r.t, r.db.Pool, sql, args...)
}

func (r *rig) threadTexts() []string {
	var out []string
	for _, m := range r.slack.Thread("C1", r.ts) {
		out = append(out, m.Text)
	}
	return out
}

func sameJSON(t *testing.T, got json.RawMessage, want any) bool {
	t.Helper()
	w, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	var a, b any
	if err := json.Unmarshal(got, &a); err != nil {
		t.Fatal(err)
	}
	_ = json.Unmarshal(w, &b)
	return reflect.DeepEqual(a, b)
}

var threeOrders = []coffee.Order{
	{UserID: "U2", Drink: "latte", Size: "large", Customizations: "oat milk"},
	{UserID: "U3", Drink: "mocha", Size: "small", Customizations: hostile},
	{UserID: "U4", Drink: "latte", Size: "large"},
}

func TestAssignmentToldInThreadAndRunnerDMed(t *testing.T) {
	r := newRig(t)
	r.history("U3", 2)
	r.history("U4", 2)
	r.openRun(threeOrders...)
	r.handle(r.closeRun("ce-1", "last_call"))

	want := ":runner: <@U2> is going this time: 0 runs in the last 30 days; team median 2."
	if got := r.threadTexts(); len(got) != 1 || got[0] != want {
		t.Fatalf("thread = %q, want %q", got, want)
	}
	parent := r.slack.Messages("C1")[0]
	if !parent.Edited || !strings.Contains(string(parent.Blocks), "orders closed") {
		t.Fatalf("run message not updated in place: %s", parent.Blocks)
	}
	// The DM: conversations.open, then every order, totals and the button.
	if n := len(r.slack.Calls("conversations.open")); n != 1 {
		t.Fatalf("%d conversations.open calls, want 1", n)
	}
	dms := r.slack.Messages(r.slack.DMChannel("U2"))
	if len(dms) != 1 {
		t.Fatalf("%d DMs to the runner, want 1", len(dms))
	}
	run := r.current()
	orders, err := store.RunOrders(context.Background(), r.db.Pool, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	dm := blocks.RunnerDM(run, orders)
	if dms[0].Text != dm.Text || !sameJSON(t, dms[0].Blocks, dm.Blocks) {
		t.Fatalf("DM = %q %s", dms[0].Text, dms[0].Blocks)
	}
	body := string(dms[0].Blocks)
	for _, want := range []string{`"user_id":"U2"`, `"user_id":"U3"`, `"user_id":"U4"`, "Large Latte (oat milk)",
		"2× Large Latte, 1× Small Mocha", `"action_id":"run_complete"`, `"value":"` + run.ID.String() + `"`, `"style":"primary"`} {
		if !strings.Contains(body, want) {
			t.Errorf("DM lacks %s", want)
		}
	}
	if !run.ReminderSentAt.Equal(clock) {
		t.Fatalf("reminder_sent_at = %v, want %v", run.ReminderSentAt, clock)
	}
	if n := r.count(`SELECT count(*) FROM audit_logs WHERE event_type = 'runner_dmed' AND run_id = $1 AND ce_id = 'ce-1'
		AND details->>'runner' = 'U2'`, run.ID); n != 1 {
		t.Fatalf("%d runner_dmed audit rows, want 1", n)
	}
	// The reminder is scheduled with the DM, to be sent on time (run-timer).
	if n := r.count(`SELECT count(*) FROM outbox WHERE ce_type = $1 AND data->>'run_id' = $2 AND data->>'kind' = 'remind'
		AND published_at IS NOT NULL`, events.TypeRunTimer, run.ID.String()); n != 1 {
		t.Fatalf("%d published reminder timers, want 1", n)
	}
}

// TestRunnerSlackWillNotDM: a DM Slack refuses for good (a deactivated
// runner) does not hold the run: the thread names the runner, nothing
// records a DM, and no reminder is scheduled.
func TestRunnerSlackWillNotDM(t *testing.T) {
	r := newRig(t)
	r.openRun(threeOrders...)
	r.slack.DeactivateUser("U2") // the runner
	r.handle(r.closeRun("ce-1", "last_call"))
	run := r.current()
	if calls := r.slack.Calls("conversations.open"); len(calls) != 1 || !strings.Contains(string(calls[0].Response), "user_disabled") {
		t.Fatalf("conversations.open calls: %d, want one refused", len(calls))
	}
	if got := r.threadTexts(); len(got) != 1 {
		t.Fatalf("thread = %q, want the assignment", got)
	}
	if cur := r.current(); !cur.ReminderSentAt.IsZero() {
		t.Fatal("reminder_sent_at set though no DM went out")
	}
	if n := r.count(`SELECT count(*) FROM outbox WHERE ce_type = $1 AND data->>'run_id' = $2`, events.TypeRunTimer, run.ID.String()); n != 0 {
		t.Fatalf("%d reminder timers for a runner who got no DM", n)
	}
	if n := r.count(`SELECT count(*) FROM processed_events WHERE consumer = $1 AND ce_id = 'ce-1'`, consumer); n != 1 {
		t.Fatal("the event was not recorded as done")
	}
}

func TestRedeliveredRunClosedDoesNotDMTwice(t *testing.T) {
	r := newRig(t)
	r.openRun(threeOrders...)
	e := r.closeRun("ce-1", "last_call")
	r.handle(e)
	r.handle(e) // redelivery of the same event
	var rc events.RunClosed
	_ = e.DataAs(&rc)
	r.handle(r.closed("ce-2", rc)) // the same fact under another id (a replay)
	if n := len(r.slack.Messages(r.slack.DMChannel("U2"))); n != 1 {
		t.Fatalf("%d DMs, want 1", n)
	}
	if got := r.threadTexts(); len(got) != 1 {
		t.Fatalf("thread = %q, want one reply", got)
	}
	if n := r.count(`SELECT count(*) FROM audit_logs WHERE event_type = 'runner_dmed'`); n != 1 {
		t.Fatalf("%d runner_dmed rows, want 1", n)
	}
}

// Two copies of one run.closed run at once (the broker may deliver twice):
// while the first copy's DM is in flight, the runner completes the run and
// the second copy runs to the end, finds the run completed, DMs nobody and
// marks the event processed. The first copy's DM must still be recorded,
// once (the chaos run's shuffled phase found this).
func TestDMRecordedWhenAConcurrentCopyFinishedFirst(t *testing.T) {
	r := newRig(t)
	r.openRun(threeOrders...)
	e := r.closeRun("ce-1", "last_call")
	var once sync.Once
	r.slack.SetFault("chat.postMessage", func(c slackstandin.Call) (int, time.Duration, bool) {
		if !strings.HasPrefix(c.Params["channel"], "D") {
			return 0, 0, false
		}
		once.Do(func() {
			r.tx(func(tx pgx.Tx) error {
				_, err := store.CompleteRun(context.Background(), tx, r.run.ID, "U2", clock.Add(time.Minute))
				return err
			})
			if _, err := r.h.Handle(context.Background(), e); err != nil {
				t.Errorf("second copy: %v", err)
			}
		})
		return 0, 0, false
	})
	r.handle(e)
	if n := len(r.slack.Messages(r.slack.DMChannel("U2"))); n != 1 {
		t.Fatalf("%d DMs, want 1", n)
	}
	if n := r.count(`SELECT count(*) FROM audit_logs WHERE event_type = 'runner_dmed' AND ce_id = 'ce-1'`); n != 1 {
		t.Fatalf("%d runner_dmed rows, want 1", n)
	}
	if run := r.current(); !run.ReminderSentAt.Equal(clock) {
		t.Fatalf("reminder_sent_at = %v, want %v", run.ReminderSentAt, clock)
	}
	r.handle(e) // and a third copy, later, changes nothing
	if n := r.count(`SELECT count(*) FROM audit_logs WHERE event_type = 'runner_dmed'`); n != 1 {
		t.Fatalf("%d runner_dmed rows after a redelivery, want 1", n)
	}
}

func TestFailedDMIsRetriedWithoutRepeatingTheThread(t *testing.T) {
	r := newRig(t)
	r.openRun(threeOrders...)
	failed := false
	r.slack.SetFault("chat.postMessage", func(c slackstandin.Call) (int, time.Duration, bool) {
		if strings.HasPrefix(c.Params["channel"], "D") && !failed {
			failed = true
			return 500, 0, true
		}
		return 0, 0, false
	})
	e := r.closeRun("ce-1", "last_call")
	if _, err := r.h.Handle(context.Background(), e); err == nil || function.IsPermanent(err) {
		t.Fatalf("Handle = %v, want a retryable error", err)
	}
	if run := r.current(); !run.ReminderSentAt.IsZero() {
		t.Fatal("reminder_sent_at recorded though Slack refused the DM")
	}
	r.handle(e)
	if n := len(r.slack.Messages(r.slack.DMChannel("U2"))); n != 1 {
		t.Fatalf("%d DMs, want 1", n)
	}
	if got := r.threadTexts(); len(got) != 1 {
		t.Fatalf("thread = %q, want one reply", got)
	}
}

// A crash between Slack accepting the thread reply and the DM and our
// commit: the retry posts neither again, yet records the DM (reminder_sent_at
// and one runner_dmed row) and marks the event processed.
func TestAlreadyPostedUnderTheKeysNothingPostedStateCommitted(t *testing.T) {
	for _, crash := range slackoncetest.Crashes {
		t.Run(crash.String(), func(t *testing.T) {
			r := newRig(t)
			r.openRun(threeOrders...)
			e := r.closeRun("ce-1", "last_call")
			key := r.run.ID.String()
			reply := slackoncetest.Posted(t, r.db.Pool, r.clients, crash, "assignment:"+key, "C1", r.ts, blocks.Message{Text: "who goes"})
			dm := slackoncetest.Posted(t, r.db.Pool, r.clients, crash, "runner-dm:"+key, r.slack.DMChannel("U2"), "", blocks.Message{Text: "your run"})
			posts := len(r.slack.Calls("chat.postMessage"))
			r.handle(e)
			r.handle(e)
			if n := len(r.slack.Calls("chat.postMessage")) - posts; n != 0 {
				t.Fatalf("%d posts after the crash", n)
			}
			if got := r.slack.Thread("C1", r.ts); len(got) != 1 || got[0].TS != reply {
				t.Fatalf("thread = %+v, want only %s", got, reply)
			}
			if got := r.slack.Messages(r.slack.DMChannel("U2")); len(got) != 1 || got[0].TS != dm {
				t.Fatalf("DMs = %+v, want only %s", got, dm)
			}
			if run := r.current(); !run.ReminderSentAt.Equal(clock) {
				t.Fatalf("reminder_sent_at = %v, want %v", run.ReminderSentAt, clock)
			}
			if n := r.count(`SELECT count(*) FROM audit_logs WHERE event_type = 'runner_dmed' AND ce_id = 'ce-1' AND details->>'dm_channel' = $1`,
				r.slack.DMChannel("U2")); n != 1 {
				t.Fatalf("%d runner_dmed rows, want 1", n)
			}
			if n := r.count(`SELECT count(*) FROM processed_events WHERE consumer = 'runner-notify' AND ce_id = 'ce-1'`); n != 1 {
				t.Fatal("event not marked processed")
			}
		})
	}
}

func TestVolunteerIsToldAsSuch(t *testing.T) {
	r := newRig(t)
	r.openRun(threeOrders...)
	r.tx(func(tx pgx.Tx) error {
		_, _, err := store.SetVolunteer(context.Background(), tx, r.run.ID, "U4")
		return err
	})
	r.handle(r.closeRun("ce-1", "U1"))
	if got := r.threadTexts(); len(got) != 1 || got[0] != ":runner: <@U4> volunteered to go." {
		t.Fatalf("thread = %q", got)
	}
	dms := r.slack.Messages(r.slack.DMChannel("U4"))
	if len(dms) != 1 || !strings.Contains(string(dms[0].Blocks), "You volunteered") {
		t.Fatalf("volunteer DM = %+v", dms)
	}
}

func TestRunWithoutOrdersGetsTheFriendlyNoteAndNoDM(t *testing.T) {
	for _, tt := range []struct{ closedBy, want string }{
		{"last_call", ":coffee: Last call! Nobody ordered this time, so the run is closed."},
		{"U1", ":coffee: <@U1> closed the run. Nobody ordered this time, so there's nothing to fetch."},
	} {
		t.Run(tt.closedBy, func(t *testing.T) {
			r := newRig(t)
			r.openRun()
			r.handle(r.closeRun("ce-1", tt.closedBy))
			if got := r.threadTexts(); len(got) != 1 || got[0] != tt.want {
				t.Fatalf("thread = %q, want %q", got, tt.want)
			}
			if n := len(r.slack.Calls("conversations.open")); n != 0 {
				t.Fatalf("%d conversations.open calls for a run nobody ordered in", n)
			}
			if n := r.count(`SELECT count(*) FROM audit_logs`); n != 0 {
				t.Fatalf("%d audit rows, want 0", n)
			}
			if run := r.current(); !run.ReminderSentAt.IsZero() {
				t.Fatal("reminder_sent_at set without a DM")
			}
		})
	}
}

func TestCancelledRunGetsNoReplyAndNoDM(t *testing.T) {
	r := newRig(t)
	r.openRun(threeOrders...)
	e := r.closeRun("ce-1", "last_call")
	r.tx(func(tx pgx.Tx) error {
		_, err := store.CancelRun(context.Background(), tx, "T1", "C1", "U1", "rain", clock)
		return err
	})
	r.handle(e)
	if got := r.threadTexts(); len(got) != 0 {
		t.Fatalf("thread = %q, want nothing", got)
	}
	if n := len(r.slack.Calls("conversations.open")); n != 0 {
		t.Fatalf("%d conversations.open calls for a cancelled run", n)
	}
	if !r.slack.Messages("C1")[0].Edited {
		t.Fatal("run message not refreshed")
	}
}

func TestPendingAnnouncementIsRetried(t *testing.T) {
	r := newRig(t)
	r.run = r.start("C1", clock.Add(-10*time.Minute), threeOrders...)
	e := r.closeRun("ce-1", "last_call")
	if _, err := r.h.Handle(context.Background(), e); err == nil || function.IsPermanent(err) {
		t.Fatalf("Handle = %v, want a retryable error", err)
	}
	if n := len(r.slack.Calls("chat.postMessage")); n != 0 {
		t.Fatalf("%d posts before the run message exists", n)
	}
}

func TestBadEventsArePermanent(t *testing.T) {
	r := newRig(t)
	notJSON := r.closed("ce-x", events.RunClosed{})
	_ = notJSON.SetData(event.ApplicationJSON, []byte("{nope"))
	for name, e := range map[string]event.Event{
		"undecodable": notJSON,
		"bad run id":  r.closed("ce-y", events.RunClosed{RunID: "nope"}),
		"unknown run": r.closed("ce-z", events.RunClosed{RunID: uuid.NewString()}),
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := r.h.Handle(context.Background(), e); !function.IsPermanent(err) {
				t.Fatalf("Handle = %v, want permanent", err)
			}
		})
	}
}
