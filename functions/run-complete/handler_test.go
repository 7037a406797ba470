package main

import (
	"context"
	"errors"
	"github.com/slack-go/slack"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
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

var clock = time.Date(2026, 11, 21, 9, 30, 0, 0, time.UTC)

type rig struct {
	t     *testing.T
	db    *pgtest.DB
	kc    *kafkatest.Cluster
	slack *slackstandin.Server
	h     *Handler
	now   time.Time
	run   coffee.Run
}

// newRig has a run in C1 (initiator U1) with orders by the given users
// (none: nobody ordered), closed 20 minutes ago; with orders by U2 and U3,
// U2 is the runner (tie broken by user id).
func newRig(t *testing.T, orderers ...string) *rig {
	t.Helper()
	ctx := context.Background()
	db, kc := pgtest.New(t), kafkatest.New(t)
	sl, clients := functest.Slack(t)
	r := &rig{t: t, db: db, kc: kc, slack: sl, now: clock}
	r.h = New(store.New(db.Pool), functest.Relay(t, db.Pool, kc), clients, func() time.Time { return r.now })
	start := clock.Add(-30 * time.Minute)
	r.run = functest.StartRun(t, db.Pool, store.NewRun{TeamID: "T1", ChannelID: "C1", InitiatorUserID: "U1",
		LastCallAt: start.Add(10 * time.Minute), CreatedAt: start})
	r.tx(func(tx pgx.Tx) (err error) {
		for _, u := range orderers {
			if _, _, err := store.PlaceOrder(ctx, tx, "T1", "C1", coffee.Order{UserID: u, Drink: "latte", Size: "small"}, start); err != nil {
				return err
			}
		}
		r.run, _, err = store.CloseRun(ctx, tx, r.run.ID, start.Add(10*time.Minute))
		return err
	})
	return r
}

func (r *rig) tx(fn func(tx pgx.Tx) error) {
	r.t.Helper()
	functest.Tx(r.t, r.db.Pool, fn)
}

// click is *Mark complete* pressed by user in their DM with the app.
func (r *rig) click(id, user string) event.Event {
	return functest.Event(id, events.TypeCompleteRequest, events.SourceIngress, events.RunAction{RunID: r.run.ID.String(), TeamID: "T1",
		ChannelID: r.slack.DMChannel(user), UserID: user, At: r.now})
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

func (r *rig) ephemerals(user string) []string {
	var out []string
	for _, m := range r.slack.Ephemerals(user) {
		if m.Channel != r.slack.DMChannel(user) {
			r.t.Errorf("ephemeral to %s shown in %s, not where they clicked", user, m.Channel)
		}
		out = append(out, m.Text)
	}
	return out
}

func TestRunnerCompletesTheRun(t *testing.T) {
	r := newRig(t, "U2", "U3")
	r.handle(r.click("ce-1", "U2"))
	r.handle(r.click("ce-1", "U2")) // redelivery
	run := r.current()
	if run.Status != coffee.StatusCompleted || !run.CompletedAt.Equal(clock) || run.CompletedAt.Location() != time.UTC {
		t.Fatalf("run = %s completed at %v", run.Status, run.CompletedAt)
	}
	if n := r.count(`SELECT count(*) FROM audit_logs WHERE event_type = 'run_completed' AND actor_user_id = 'U2'
		AND run_id = $1 AND ce_id = 'ce-1'`, run.ID); n != 1 {
		t.Fatalf("%d run_completed audit rows, want 1", n)
	}
	if n := r.count(`SELECT count(*) FROM outbox WHERE ce_type = $1 AND published_at IS NOT NULL`, events.TypeRunCompleted); n != 1 {
		t.Fatalf("%d published run.completed rows, want 1", n)
	}
	recs := r.kc.Consume(t, events.TopicCompletions, 1, 10*time.Second)
	if len(recs) != 1 || string(recs[0].Key) != run.ID.String() {
		t.Fatalf("%d run.completed records", len(recs))
	}
	ev, err := kafka.Event(recs[0])
	if err != nil {
		t.Fatal(err)
	}
	var fact events.RunFact
	if err := ev.DataAs(&fact); err != nil || ev.Type() != events.TypeRunCompleted ||
		fact != (events.RunFact{RunID: run.ID.String(), UserID: "U2"}) {
		t.Fatalf("%s %+v (%v)", ev.Type(), fact, err)
	}
	if got := r.ephemerals("U2"); len(got) != 1 || got[0] != msgDone {
		t.Fatalf("ephemerals to U2 = %q", got)
	}
}

// TestCompletionIsOneTransaction: when the outbox write fails, the status
// change and the audit row roll back with it and the click is retried.
func TestCompletionIsOneTransaction(t *testing.T) {
	r := newRig(t, "U2", "U3")
	ctx := context.Background()
	if _, err := r.db.Pool.Exec(ctx, `
		CREATE FUNCTION refuse_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN RAISE EXCEPTION 'outbox unavailable'; END $$;
		CREATE TRIGGER refuse_outbox BEFORE INSERT ON outbox FOR EACH ROW EXECUTE FUNCTION refuse_outbox();`); err != nil {
		t.Fatal(err)
	}
	if _, err := r.h.Handle(ctx, r.click("ce-1", "U2")); err == nil || function.IsPermanent(err) {
		t.Fatalf("Handle = %v, want a retryable error", err)
	}
	if run := r.current(); run.Status != coffee.StatusClosed || !run.CompletedAt.IsZero() {
		t.Fatalf("run = %s %v after a failed completion", run.Status, run.CompletedAt)
	}
	if n := r.count(`SELECT count(*) FROM audit_logs`) + r.count(`SELECT count(*) FROM processed_events`); n != 0 {
		t.Fatalf("%d audit/processed rows after a failed completion", n)
	}
	if _, err := r.db.Pool.Exec(ctx, `DROP TRIGGER refuse_outbox ON outbox`); err != nil {
		t.Fatal(err)
	}
	r.handle(r.click("ce-1", "U2"))
	if run := r.current(); run.Status != coffee.StatusCompleted {
		t.Fatalf("retry left the run %s", run.Status)
	}
}

func TestSecondClickIsHarmless(t *testing.T) {
	r := newRig(t, "U2", "U3")
	r.handle(r.click("ce-1", "U2"))
	r.now = clock.Add(time.Minute)
	r.handle(r.click("ce-2", "U2"))
	if run := r.current(); run.Status != coffee.StatusCompleted || !run.CompletedAt.Equal(clock) {
		t.Fatalf("run = %s completed at %v", run.Status, run.CompletedAt)
	}
	if got := r.ephemerals("U2"); len(got) != 2 || got[1] != "Already marked complete. Thanks!" {
		t.Fatalf("ephemerals to U2 = %q", got)
	}
	if n := r.count(`SELECT count(*) FROM audit_logs`); n != 1 {
		t.Fatalf("%d audit rows, want 1", n)
	}
	if n := r.count(`SELECT count(*) FROM outbox`); n != 1 {
		t.Fatalf("%d outbox rows, want 1", n)
	}
}

func TestRefusedClicksChangeNothing(t *testing.T) {
	tests := []struct {
		name     string
		orderers []string
		setup    func(r *rig)
		user     string
		want     string
	}{
		{name: "not the runner", orderers: []string{"U2", "U3"}, user: "U3",
			want: "Only <@U2> can mark this run complete."},
		{name: "initiator is not the runner", orderers: []string{"U2", "U3"}, user: "U1",
			want: "Only <@U2> can mark this run complete."},
		{name: "cancelled", orderers: []string{"U2"}, user: "U2", want: msgCancelled, setup: func(r *rig) {
			r.tx(func(tx pgx.Tx) error {
				_, err := store.CancelRun(context.Background(), tx, "T1", "C1", "U1", "", clock)
				return err
			})
		}},
		{name: "nobody ordered", user: "U1", want: msgNoRunner},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, tt.orderers...)
			if tt.setup != nil {
				tt.setup(r)
			}
			before := r.current()
			r.handle(r.click("ce-1", tt.user))
			r.handle(r.click("ce-1", tt.user)) // redelivery: no second message
			if got := r.ephemerals(tt.user); len(got) != 1 || got[0] != tt.want {
				t.Fatalf("ephemerals to %s = %q, want %q", tt.user, got, tt.want)
			}
			if after := r.current(); after.Status != before.Status || !after.CompletedAt.IsZero() {
				t.Fatalf("run changed: %s -> %s", before.Status, after.Status)
			}
			if n := r.count(`SELECT count(*) FROM audit_logs WHERE event_type = 'run_completed'`) + r.count(`SELECT count(*) FROM outbox`); n != 0 {
				t.Fatalf("%d audit/outbox rows after a refused click", n)
			}
		})
	}
}

// TestAnswersGoWhereTheyClicked: with the click's response_url the answer
// reaches the clicker even in a conversation they are not a member of (a
// runner's DM forwarded to them), where chat.postEphemeral is refused.
func TestAnswersGoWhereTheyClicked(t *testing.T) {
	r := newRig(t, "U2", "U3")
	dm := r.slack.DMChannel("U2")
	click := functest.Event("ce-1", events.TypeCompleteRequest, events.SourceIngress, events.RunAction{RunID: r.run.ID.String(),
		TeamID: "T1", ChannelID: dm, UserID: "U3", ResponseURL: r.slack.NewResponseURL(dm, "U3"), At: r.now})
	r.handle(click)
	got := r.slack.Ephemerals("U3")
	if len(got) != 1 || got[0].Via != slackstandin.MethodResponseURL || got[0].Text != "Only <@U2> can mark this run complete." {
		t.Fatalf("answers to U3: %+v", got)
	}
	if n := len(r.slack.Calls("chat.postEphemeral")); n != 0 {
		t.Fatalf("%d chat.postEphemeral calls, want none", n)
	}
}

// TestRefusedAnswerDoesNotHoldTheRun: the non-runner's click in the
// runner's DM without a response_url (Slack refuses the ephemeral,
// user_not_in_channel) is recorded at once, so the runner's click behind it
// completes the run.
func TestRefusedAnswerDoesNotHoldTheRun(t *testing.T) {
	r := newRig(t, "U2", "U3")
	forwarded := functest.Event("ce-1", events.TypeCompleteRequest, events.SourceIngress, events.RunAction{RunID: r.run.ID.String(),
		TeamID: "T1", ChannelID: r.slack.DMChannel("U2"), UserID: "U3", At: r.now})
	if _, err := r.h.Handle(context.Background(), forwarded); err != nil {
		t.Fatalf("refused answer: Handle = %v, want the click done", err)
	}
	calls := r.slack.Calls("chat.postEphemeral")
	if len(calls) != 1 || !strings.Contains(string(calls[0].Response), "user_not_in_channel") {
		t.Fatalf("chat.postEphemeral calls: %+v", calls)
	}
	if n := r.count(`SELECT count(*) FROM processed_events WHERE consumer = $1 AND ce_id = 'ce-1'`, consumer); n != 1 {
		t.Fatal("the refused click was not recorded")
	}
	r.handle(r.click("ce-2", "U2"))
	if run := r.current(); run.Status != coffee.StatusCompleted {
		t.Fatalf("run %s after the runner's click, want completed", run.Status)
	}
}

func TestBadEventsArePermanent(t *testing.T) {
	r := newRig(t, "U2")
	notJSON := r.click("ce-x", "U2")
	_ = notJSON.SetData(event.ApplicationJSON, []byte("{nope"))
	badID := r.click("ce-y", "U2")
	_ = badID.SetData(event.ApplicationJSON, events.RunAction{RunID: "nope", ChannelID: "DU2", UserID: "U2"})
	unknown := r.click("ce-z", "U2")
	_ = unknown.SetData(event.ApplicationJSON, events.RunAction{RunID: uuid.NewString(), ChannelID: "DU2", UserID: "U2"})
	for name, e := range map[string]event.Event{"undecodable": notJSON, "bad run id": badID, "unknown run": unknown, "no user": r.click("ce-w", "")} {
		t.Run(name, func(t *testing.T) {
			if _, err := r.h.Handle(context.Background(), e); !function.IsPermanent(err) {
				t.Fatalf("Handle = %v, want permanent", err)
			}
		})
	}
	if run := r.current(); run.Status != coffee.StatusClosed {
		t.Fatalf("run %s after bad events", run.Status)
	}
}

// TestRateLimitedAnswerRetriesTheWholeClick: when Slack rate-limits the
// answer, nothing is committed and the error carries the rate limit (the
// runtime buffers the event in slack.retry); the retried click completes the
// run and answers exactly once.
func TestRateLimitedAnswerRetriesTheWholeClick(t *testing.T) {
	r := newRig(t, "U2", "U3")
	r.slack.SetFault("chat.postEphemeral", slackstandin.FailN(1, 429, 2*time.Second))
	_, err := r.h.Handle(context.Background(), r.click("ce-1", "U2"))
	var rl *slack.RateLimitedError
	if !errors.As(err, &rl) || rl.RetryAfter != 2*time.Second {
		t.Fatalf("Handle = %v, want an error carrying Slack's rate limit", err)
	}
	if got := r.current().Status; got != coffee.StatusClosed {
		t.Fatalf("status %s after a rate-limited answer, want closed (rolled back)", got)
	}
	if n := r.count(`SELECT count(*) FROM outbox`); n != 0 {
		t.Fatalf("%d outbox rows after a rolled-back completion", n)
	}
	r.handle(r.click("ce-1", "U2")) // the same event, back from slack.retry
	if got := r.current().Status; got != coffee.StatusCompleted {
		t.Fatalf("status %s after the retry, want completed", got)
	}
	if got := r.ephemerals("U2"); len(got) != 1 || got[0] != msgDone {
		t.Fatalf("answers to the runner: %q, want exactly one %q", got, msgDone)
	}
}
