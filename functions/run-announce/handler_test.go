package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/coffeebuddy/coffeebuddy/shared/blocks"
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
)

func TestMain(m *testing.M) { pgtest.Main(m) }

type rig struct {
	db      *pgtest.DB
	slack   *slackstandin.Server
	clients *slackapi.Clients
	h       *Handler
	run     uuid.UUID
}

func newRig(t *testing.T) *rig {
	t.Helper()
	db := pgtest.New(t)
	sl, clients := functest.Slack(t)
	r := &rig{db: db, slack: sl, clients: clients, h: New(store.New(db.Pool), clients)}
	now := time.Now().UTC()
	err := pgx.BeginFunc(context.Background(), db.Pool, func(tx pgx.Tx) error {
		run, err := store.CreateRun(context.Background(), tx, store.NewRun{
			TeamID: "T1", ChannelID: "C1", InitiatorUserID: "U1", LastCallAt: now.Add(10 * time.Minute), CreatedAt: now,
		})
		r.run = run.ID
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *rig) created(id string) event.Event {
	return functest.Event(id, events.TypeRunCreated, "/coffeebuddy/run-start", events.RunCreated{RunID: r.run.String(), TeamID: "T1", ChannelID: "C1", InitiatorUserID: "U1"})
}

func TestAnnouncesOnceAndRecordsTheMessage(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	if _, err := r.h.Handle(ctx, r.created("ce-1")); err != nil {
		t.Fatal(err)
	}
	msgs := r.slack.Messages("C1")
	if len(msgs) != 1 {
		t.Fatalf("%d messages in C1, want 1", len(msgs))
	}
	run, err := store.GetRun(ctx, r.db.Pool, r.run)
	if err != nil || run.SlackMessageTS != msgs[0].TS {
		t.Fatalf("slack_message_ts = %q, posted %q (%v)", run.SlackMessageTS, msgs[0].TS, err)
	}
	// Redelivery (same id) and a republished duplicate (new id) post nothing.
	for _, id := range []string{"ce-1", "ce-2"} {
		if _, err := r.h.Handle(ctx, r.created(id)); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(r.slack.Calls("chat.postMessage")); n != 1 {
		t.Fatalf("%d chat.postMessage calls, want 1", n)
	}
	var audits int
	r.db.Pool.QueryRow(ctx, `SELECT count(*) FROM audit_logs WHERE event_type = 'run_announced' AND run_id = $1`, r.run).Scan(&audits)
	if audits != 1 {
		t.Fatalf("%d run_announced audit rows, want 1", audits)
	}
}

func TestSlackFailureIsRetriedNotLost(t *testing.T) {
	r := newRig(t)
	r.slack.SetFault("chat.postMessage", slackstandin.FailN(1, 500, 0))
	_, err := r.h.Handle(context.Background(), r.created("ce-1"))
	if err == nil || function.IsPermanent(err) {
		t.Fatalf("Handle = %v, want a retryable error", err)
	}
	// The broker's retry succeeds and the message is posted once.
	if _, err := r.h.Handle(context.Background(), r.created("ce-1")); err != nil {
		t.Fatal(err)
	}
	if n := len(r.slack.Messages("C1")); n != 1 {
		t.Fatalf("%d messages, want 1", n)
	}
}

func TestUnknownRunIsPermanent(t *testing.T) {
	r := newRig(t)
	e := r.created("ce-1")
	_ = e.SetData(event.ApplicationJSON, events.RunCreated{RunID: uuid.NewString()})
	if _, err := r.h.Handle(context.Background(), e); !function.IsPermanent(err) {
		t.Fatalf("Handle = %v, want permanent", err)
	}
	bad := r.created("ce-2")
	_ = bad.SetData(event.ApplicationJSON, events.RunCreated{RunID: "not-a-uuid"})
	if _, err := r.h.Handle(context.Background(), bad); !function.IsPermanent(err) {
		t.Fatalf("Handle = %v, want permanent", err)
	}
}

// A crash between Slack accepting the run message and the commit: the retry
// posts nothing, yet records the message's ts and the audit row once, and
// brings the message up to date.
func TestRunMessageAlreadyPostedUnderItsKey(t *testing.T) {
	for _, crash := range slackoncetest.Crashes {
		t.Run(crash.String(), func(t *testing.T) {
			r := newRig(t)
			ctx := context.Background()
			ts := slackoncetest.Posted(t, r.db.Pool, r.clients, crash, "run-message:"+r.run.String(), "C1", "",
				blocks.Message{Text: "Coffee run (as it stood)"})
			for _, id := range []string{"ce-1", "ce-1"} {
				if _, err := r.h.Handle(ctx, r.created(id)); err != nil {
					t.Fatal(err)
				}
			}
			if n := len(r.slack.Calls("chat.postMessage")); n != 1 {
				t.Fatalf("%d chat.postMessage calls, want only the crashed attempt's", n)
			}
			run, err := store.GetRun(ctx, r.db.Pool, r.run)
			if err != nil || run.SlackMessageTS != ts {
				t.Fatalf("slack_message_ts = %q, want %q (%v)", run.SlackMessageTS, ts, err)
			}
			if n := functest.Count(t, r.db.Pool, `SELECT count(*) FROM audit_logs WHERE event_type = 'run_announced' AND run_id = $1 AND details->>'ts' = $2`, r.run, ts); n != 1 {
				t.Fatalf("%d run_announced audit rows, want 1", n)
			}
			if n := functest.Count(t, r.db.Pool, `SELECT count(*) FROM processed_events WHERE consumer = 'run-announce' AND ce_id = 'ce-1'`); n != 1 {
				t.Fatalf("event not marked processed")
			}
			if msgs := r.slack.Messages("C1"); len(msgs) != 1 || !msgs[0].Edited || msgs[0].Text == "Coffee run (as it stood)" {
				t.Fatalf("found message not brought up to date: %+v", msgs)
			}
		})
	}
}

// TestChannelsTheBotIsNotIn plays run.created where Slack does not let the
// bot post: a public channel it joins and then posts in; private or
// archived ones, where the run is abandoned (audit run_abandoned) and its
// initiator told why through the command's response_url, once.
func TestChannelsTheBotIsNotIn(t *testing.T) {
	for _, tc := range []struct {
		name      string
		conv      slackstandin.Conversation
		posted    bool
		slackErr  string
		noticeHas string
	}{
		{"public, not a member", slackstandin.Conversation{ID: "C1", Name: "coffee"}, true, "", ""},
		{"private, not a member", slackstandin.Conversation{ID: "C1", Name: "secret", Private: true}, false, "channel_not_found", "/invite @coffeebuddy"},
		// Archived since the /coffee: Slack takes no answer there either
		// (channel_is_archived); the refusal is logged.
		{"archived", slackstandin.Conversation{ID: "C1", Name: "old", Archived: true, BotMember: true}, false, "is_archived", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t)
			ctx := context.Background()
			if err := r.slack.AddConversation(tc.conv); err != nil {
				t.Fatal(err)
			}
			e := functest.Event("ce-1", events.TypeRunCreated, "/coffeebuddy/run-start", events.RunCreated{RunID: r.run.String(),
				TeamID: "T1", ChannelID: "C1", InitiatorUserID: "U1", ResponseURL: r.slack.NewResponseURL("C1", "U1")})
			for range 2 { // and a redelivery
				if _, err := r.h.Handle(ctx, e); err != nil {
					t.Fatalf("Handle = %v", err)
				}
			}
			run, err := store.GetRun(ctx, r.db.Pool, r.run)
			if err != nil {
				t.Fatal(err)
			}
			notices := r.slack.Ephemerals("U1")
			if tc.posted {
				if len(r.slack.Messages("C1")) != 1 || run.SlackMessageTS == "" || len(r.slack.Calls("conversations.join")) != 1 {
					t.Fatalf("joined %d times, %d messages, ts %q", len(r.slack.Calls("conversations.join")), len(r.slack.Messages("C1")), run.SlackMessageTS)
				}
				if len(notices) != 0 {
					t.Fatalf("notices to the initiator: %+v", notices)
				}
				return
			}
			if run.Status != "cancelled" || run.SlackMessageTS != "" {
				t.Fatalf("run %s ts %q, want abandoned", run.Status, run.SlackMessageTS)
			}
			if n := functest.Count(t, r.db.Pool, `SELECT count(*) FROM audit_logs WHERE event_type = 'run_abandoned'
				AND run_id = $1 AND details->>'slack_error' = $2`, r.run, tc.slackErr); n != 1 {
				t.Fatalf("%d run_abandoned rows with %s, want 1", n, tc.slackErr)
			}
			switch {
			case tc.noticeHas == "" && len(notices) != 0:
				t.Fatalf("notices to the initiator: %+v, want none", notices)
			case tc.noticeHas != "" && (len(notices) != 1 || notices[0].Via != slackstandin.MethodResponseURL ||
				!strings.Contains(notices[0].Text, tc.noticeHas)):
				t.Fatalf("notices to the initiator: %+v, want one saying %q", notices, tc.noticeHas)
			}
			// The channel is free for the next /coffee.
			if _, err := store.ActiveRun(ctx, r.db.Pool, "T1", "C1"); err == nil {
				t.Fatal("the abandoned run still holds the channel")
			}
		})
	}
}
