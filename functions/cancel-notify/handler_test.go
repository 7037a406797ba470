package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/coffeebuddy/coffeebuddy/shared/blocks"
	"github.com/coffeebuddy/coffeebuddy/shared/coffee"
	"github.com/coffeebuddy/coffeebuddy/shared/events"
	"github.com/coffeebuddy/coffeebuddy/shared/functest"
	"github.com/coffeebuddy/coffeebuddy/shared/function"
	"github.com/coffeebuddy/coffeebuddy/shared/postgres/pgtest"
	"github.com/coffeebuddy/coffeebuddy/shared/slackapi"
	"github.com/coffeebuddy/coffeebuddy/shared/slackonce/slackoncetest"
	"github.com/coffeebuddy/coffeebuddy/shared/slackstandin"
	"github.com/coffeebuddy/coffeebuddy/shared/store"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/slack-go/slack"
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
	run     uuid.UUID
}

// newRig starts a run by U1 in C1 with orders from U2 then U3.
func newRig(t *testing.T) *rig {
	t.Helper()
	db := pgtest.New(t)
	sl, clients := functest.Slack(t)
	r := &rig{t: t, db: db, slack: sl, clients: clients, h: New(store.New(db.Pool), clients)}
	ctx := context.Background()
	r.run = functest.StartRun(t, db.Pool, store.NewRun{TeamID: "T1", ChannelID: "C1", InitiatorUserID: "U1",
		LastCallAt: clock.Add(10 * time.Minute), CreatedAt: clock.Add(-time.Minute)}).ID
	for i, u := range []string{"U2", "U3"} {
		r.tx(func(tx pgx.Tx) error {
			_, _, err := store.PlaceOrder(ctx, tx, "T1", "C1", coffee.Order{UserID: u, Drink: "mocha", Size: "large"},
				clock.Add(time.Duration(i-60)*time.Second))
			return err
		})
	}
	return r
}

func (r *rig) tx(fn func(pgx.Tx) error) {
	r.t.Helper()
	functest.Tx(r.t, r.db.Pool, fn)
}

// announce posts the run message (as run-announce would) and records its ts.
func (r *rig) announce() string {
	r.t.Helper()
	ctx := context.Background()
	run, err := store.GetRun(ctx, r.db.Pool, r.run)
	if err != nil {
		r.t.Fatal(err)
	}
	cli, err := r.clients.Get()
	if err != nil {
		r.t.Fatal(err)
	}
	_, ts, err := cli.PostMessage("C1", slack.MsgOptionText(blocks.RunMessageText(run, 0), false), slack.MsgOptionBlocks(blocks.RunMessage(run, nil)...))
	if err != nil {
		r.t.Fatal(err)
	}
	if err := store.SetRunMessage(ctx, r.db.Pool, r.run, ts); err != nil {
		r.t.Fatal(err)
	}
	return ts
}

// cancel cancels the run as user with reason and returns the fact run-cancel publishes.
func (r *rig) cancel(user, reason string) events.RunCancelled {
	r.t.Helper()
	r.tx(func(tx pgx.Tx) error {
		_, err := store.CancelRun(context.Background(), tx, "T1", "C1", user, reason, clock)
		return err
	})
	return events.RunCancelled{RunID: r.run.String(), CancelledBy: user, Reason: reason}
}

func cancelledEvent(id string, fact events.RunCancelled) event.Event {
	return functest.Event(id, events.TypeRunCancelled, "/coffeebuddy/run-cancel", fact)
}

func (r *rig) processed() int {
	var n int
	r.db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM processed_events WHERE consumer = 'cancel-notify'`).Scan(&n)
	return n
}

// plainTexts returns the text of every rich-text text element in raw blocks.
func plainTexts(t *testing.T, raw json.RawMessage) []string {
	t.Helper()
	var bl slack.Blocks
	if err := json.Unmarshal(raw, &bl); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, b := range bl.BlockSet {
		rt, ok := b.(*slack.RichTextBlock)
		if !ok {
			continue
		}
		for _, el := range rt.Elements {
			if sec, ok := el.(*slack.RichTextSection); ok {
				for _, se := range sec.Elements {
					if te, ok := se.(*slack.RichTextSectionTextElement); ok {
						out = append(out, te.Text)
					}
				}
			}
		}
	}
	return out
}

func TestTellsEveryOrdererOnce(t *testing.T) {
	r := newRig(t)
	ts := r.announce()
	fact := r.cancel("U1", hostile)
	ctx := context.Background()
	for _, id := range []string{"ce-1", "ce-1"} { // the second is a redelivery
		if _, err := r.h.Handle(ctx, cancelledEvent(id, fact)); err != nil {
			t.Fatal(err)
		}
	}
	// The run message now says cancelled, in place.
	msgs := r.slack.Messages("C1")
	if len(msgs) != 2 || msgs[0].TS != ts || !msgs[0].Edited || !strings.Contains(string(msgs[0].Blocks), "cancelled") {
		t.Fatalf("run message not updated in place: %+v", msgs)
	}
	if n := len(r.slack.Calls("chat.update")); n != 1 {
		t.Fatalf("%d chat.update calls, want 1", n)
	}
	thread := r.slack.Thread("C1", ts)
	if len(thread) != 1 {
		t.Fatalf("%d thread replies, want 1", len(thread))
	}
	want := ":x: <@U1> cancelled this coffee run (reason: &lt;!channel&gt; *bold* &amp; &lt;@U0EVE&gt;). <@U2> <@U3> your orders are off."
	if thread[0].Text != want {
		t.Fatalf("notice %q, want %q", thread[0].Text, want)
	}
	// The reason is one plain text element, exactly as typed: no broadcast,
	// no mention, no mrkdwn.
	texts := plainTexts(t, thread[0].Blocks)
	found := false
	for _, s := range texts {
		found = found || s == hostile
	}
	if !found {
		t.Fatalf("reason not shown verbatim in plain text: %q", texts)
	}
	raw := string(thread[0].Blocks)
	for _, bad := range []string{`"broadcast"`, `"U0EVE"`, `"mrkdwn"`} {
		if strings.Contains(raw, bad) {
			t.Fatalf("notice blocks carry %s: %s", bad, raw)
		}
	}
	for _, u := range []string{"U2", "U3"} {
		if !strings.Contains(raw, `"user_id":"`+u+`"`) {
			t.Fatalf("orderer %s not tagged: %s", u, raw)
		}
	}
	if n := r.processed(); n != 1 {
		t.Fatalf("%d processed events, want 1", n)
	}
}

func TestNoReasonNoOrders(t *testing.T) {
	r := newRig(t)
	r.tx(func(tx pgx.Tx) error {
		_, err := tx.Exec(context.Background(), `DELETE FROM orders`)
		return err
	})
	ts := r.announce()
	fact := r.cancel("U1", "")
	if _, err := r.h.Handle(context.Background(), cancelledEvent("ce-1", fact)); err != nil {
		t.Fatal(err)
	}
	thread := r.slack.Thread("C1", ts)
	if len(thread) != 1 || thread[0].Text != ":x: <@U1> cancelled this coffee run." {
		t.Fatalf("thread %+v", thread)
	}
}

func TestCancelledBeforeAnnouncedPostsNothing(t *testing.T) {
	r := newRig(t)
	fact := r.cancel("U1", "oops")
	if _, err := r.h.Handle(context.Background(), cancelledEvent("ce-1", fact)); err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"chat.postMessage", "chat.update"} {
		if n := len(r.slack.Calls(m)); n != 0 {
			t.Fatalf("%d %s calls for an unannounced run", n, m)
		}
	}
	if r.processed() != 1 {
		t.Fatal("event not recorded as processed")
	}
}

func TestSlackFailureIsRetriedNotLost(t *testing.T) {
	r := newRig(t)
	ts := r.announce()
	fact := r.cancel("U1", "")
	for _, method := range []string{"chat.update", "chat.postMessage"} {
		r.slack.SetFault(method, slackstandin.FailN(1, 500, 0))
		_, err := r.h.Handle(context.Background(), cancelledEvent("ce-1", fact))
		if err == nil || function.IsPermanent(err) {
			t.Fatalf("%s failing: Handle = %v, want a retryable error", method, err)
		}
		if r.processed() != 0 {
			t.Fatalf("%s failing: recorded as processed", method)
		}
	}
	if _, err := r.h.Handle(context.Background(), cancelledEvent("ce-1", fact)); err != nil {
		t.Fatal(err)
	}
	if n := len(r.slack.Thread("C1", ts)); n != 1 {
		t.Fatalf("%d thread replies, want 1", n)
	}
}

// A crash between Slack accepting the notice and our commit: the retry
// posts nothing and marks the event processed.
func TestNoticeAlreadyPostedUnderItsKey(t *testing.T) {
	for _, crash := range slackoncetest.Crashes {
		t.Run(crash.String(), func(t *testing.T) {
			r := newRig(t)
			parent := r.announce()
			fact := r.cancel("U1", "rain")
			ts := slackoncetest.Posted(t, r.db.Pool, r.clients, crash, "cancel:"+r.run.String(), "C1", parent,
				blocks.Message{Text: "cancelled"})
			if _, err := r.h.Handle(context.Background(), cancelledEvent("ce-1", fact)); err != nil {
				t.Fatal(err)
			}
			if thread := r.slack.Thread("C1", parent); len(thread) != 1 || thread[0].TS != ts {
				t.Fatalf("thread = %+v, want only %s", thread, ts)
			}
			if r.processed() != 1 {
				t.Fatal("event not recorded as processed")
			}
			if !r.slack.Messages("C1")[0].Edited {
				t.Fatal("run message not updated in place")
			}
		})
	}
}

func TestBadEventsArePermanent(t *testing.T) {
	r := newRig(t)
	r.announce()
	notJSON := cancelledEvent("ce-x", events.RunCancelled{})
	_ = notJSON.SetData(event.ApplicationJSON, []byte("{nope"))
	tests := map[string]event.Event{
		"undecodable":       notJSON,
		"bad run id":        cancelledEvent("ce-y", events.RunCancelled{RunID: "nope", CancelledBy: "U1"}),
		"unknown run":       cancelledEvent("ce-z", events.RunCancelled{RunID: uuid.NewString(), CancelledBy: "U1"}),
		"no canceller":      cancelledEvent("ce-w", events.RunCancelled{RunID: r.run.String()}),
		"run not cancelled": cancelledEvent("ce-v", events.RunCancelled{RunID: r.run.String(), CancelledBy: "U1"}),
	}
	for name, e := range tests {
		if _, err := r.h.Handle(context.Background(), e); !function.IsPermanent(err) {
			t.Errorf("%s: Handle = %v, want permanent", name, err)
		}
	}
	if n := len(r.slack.Thread("C1", r.slack.Messages("C1")[0].TS)); n != 0 {
		t.Fatalf("%d thread replies from bad events", n)
	}
}
