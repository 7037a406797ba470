package devstack_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coffeebuddy/coffeebuddy/eventing/devstack"
	"github.com/coffeebuddy/coffeebuddy/shared/blocks"
	"github.com/coffeebuddy/coffeebuddy/shared/slackstandin"
)

// eventually polls cond every 25 ms for up to 20 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 20s for %s", what)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// TestJourneyBotNotInTheChannel plays /coffee where Slack does not let the
// bot post yet: a public channel it joins by itself, a private one whose
// caller is told at once to invite it (and whose run is given up, so the
// channel is free), then the same private channel after the invitation.
func TestJourneyBotNotInTheChannel(t *testing.T) {
	s := startStack(t, nil)
	ctx := context.Background()
	db := openDB(t, s.DatabaseURL)
	for _, c := range []slackstandin.Conversation{
		{ID: "C0PUBLIC", Name: "coffee-public"},
		{ID: "G0PRIVATE", Name: "coffee-private", Private: true},
	} {
		must(t, s.Slack.AddConversation(c))
	}

	pub := devstack.NewPlayer(s, "C0PUBLIC")
	_, err := pub.Command(ctx, alice, "/coffee", "")
	must(t, err)
	_, _, err = pub.RunMessage(ctx)
	must(t, err)
	if !s.Slack.IsMember("C0PUBLIC", slackstandin.BotUserID) || len(s.Slack.Calls("conversations.join")) != 1 {
		t.Fatalf("the bot did not join the public channel (%d joins)", len(s.Slack.Calls("conversations.join")))
	}

	priv := devstack.NewPlayer(s, "G0PRIVATE")
	_, err = priv.Command(ctx, bob, "/coffee", "")
	must(t, err)
	notice, err := priv.WaitEphemeral(ctx, bob, "/invite @coffeebuddy")
	must(t, err)
	if notice.Channel != "G0PRIVATE" || notice.Via != slackstandin.MethodResponseURL {
		t.Fatalf("notice in %s via %s, want where bob typed, through the command's response_url", notice.Channel, notice.Via)
	}
	eventually(t, "the unseen run to be given up", func() bool {
		return count(t, db, `SELECT count(*) FROM coffee_runs WHERE channel_id = 'G0PRIVATE' AND status = 'cancelled'`) == 1
	})
	if n := count(t, db, `SELECT count(*) FROM audit_logs WHERE channel_id = 'G0PRIVATE' AND event_type = 'run_abandoned'
		AND details->>'slack_error' = 'channel_not_found'`); n != 1 {
		t.Fatalf("%d run_abandoned audit rows, want 1", n)
	}
	if msgs := s.Slack.Messages("G0PRIVATE"); len(msgs) != 0 {
		t.Fatalf("%d messages in a channel the bot is not in", len(msgs))
	}

	// bob invites the bot; the next /coffee works.
	must(t, s.Slack.SetBotMember("G0PRIVATE", true))
	_, err = priv.Command(ctx, bob, "/coffee", "")
	must(t, err)
	_, _, err = priv.RunMessage(ctx)
	must(t, err)
}

// TestJourneyRefusedAnswerNeverStallsTheRun: a non-runner presses Mark
// complete in the runner's DM (forwarded to them). The answer reaches them
// there through the click's response_url; when Slack refuses even that,
// the refusal is logged and counted and the click recorded, so the
// runner's own click right behind it completes the run at once.
func TestJourneyRefusedAnswerNeverStallsTheRun(t *testing.T) {
	s := startStack(t, nil)
	ctx := context.Background()
	p := devstack.NewPlayer(s, "C0STALL")
	db := openDB(t, s.DatabaseURL)

	_, err := p.Command(ctx, alice, "/coffee", "")
	must(t, err)
	msg, runID, err := p.RunMessage(ctx)
	must(t, err)
	_, err = p.Submit(ctx, alice, "latte", "small", "")
	must(t, err)
	_, err = p.Order(ctx, bob, "mocha", "large", "")
	must(t, err)
	// Both orders are in the run before it closes (Close now is another
	// Trigger: it would not wait for them).
	_, err = p.WaitRunMessage(ctx, "Orders (2)")
	must(t, err)
	must(t, p.Click(ctx, carol, msg, blocks.ActionVolunteer))
	_, err = p.WaitEphemeral(ctx, carol, "Thanks for volunteering")
	must(t, err)
	must(t, p.Click(ctx, alice, msg, blocks.ActionCloseNow))
	dm, err := p.WaitDM(ctx, carol, blocks.ActionComplete)
	must(t, err)

	// dave is not in carol's DM: the answer still reaches him there.
	must(t, p.Click(ctx, dave, dm, blocks.ActionComplete))
	answer, err := p.WaitEphemeral(ctx, dave, "can mark this run complete")
	must(t, err)
	if answer.Channel != dm.Channel || answer.Via != slackstandin.MethodResponseURL {
		t.Fatalf("answer in %s via %s, want in the DM through the response_url", answer.Channel, answer.Via)
	}

	// Now Slack refuses the answer for good (the response_url expired).
	s.Slack.SetFault(slackstandin.MethodResponseURL, slackstandin.FailN(1, http.StatusNotFound, 0))
	must(t, p.Click(ctx, bob, dm, blocks.ActionComplete))
	must(t, p.Click(ctx, carol, dm, blocks.ActionComplete))
	clicked := time.Now()
	done, err := p.WaitThread(ctx, msg.TS, "Coffee's here")
	must(t, err)
	if took := time.Since(clicked); took > 5*time.Second {
		t.Fatalf("completion posted %v after the runner's click, want within 5 s", took)
	}
	if !strings.Contains(done.Text, "<@U0ALICE>") || !strings.Contains(done.Text, "<@U0BOB>") {
		t.Errorf("completion does not tag everyone: %q", done.Text)
	}
	var status string
	must(t, db.QueryRow(ctx, `SELECT status FROM coffee_runs WHERE id = $1`, runID).Scan(&status))
	if status != "completed" {
		t.Fatalf("run %s, want completed", status)
	}
	// bob's refused answer was recorded as done, not retried.
	if n := count(t, db, `SELECT count(*) FROM processed_events WHERE consumer = 'run-complete'`); n != 3 {
		t.Fatalf("run-complete recorded %d clicks, want 3", n)
	}
	if calls := s.Slack.Calls(slackstandin.MethodResponseURL); countStatus(calls, http.StatusNotFound) != 1 {
		t.Fatalf("the refused answer was tried %d times, want once", countStatus(calls, http.StatusNotFound))
	}
	// The runner's DM no longer offers the button, and says it is done.
	eventually(t, "carol's DM to show the run completed", func() bool {
		for _, m := range s.Slack.Messages(dm.Channel) {
			if m.TS == dm.TS {
				return m.Edited && strings.Contains(string(m.Blocks), "Completed") && !strings.Contains(string(m.Blocks), blocks.ActionComplete)
			}
		}
		return false
	})
	// The thread heard of the volunteer once: when the run closed.
	volunteerNotes := 0
	for _, m := range s.Slack.Thread("C0STALL", msg.TS) {
		if strings.Contains(m.Text, "volunteered") {
			volunteerNotes++
		}
	}
	if volunteerNotes != 1 {
		t.Fatalf("%d thread notes about the volunteer, want 1", volunteerNotes)
	}
}

func countStatus(calls []slackstandin.Call, status int) int {
	n := 0
	for _, c := range calls {
		if c.Status == status {
			n++
		}
	}
	return n
}

// TestJourneyLastCallOnTime: the run closes within 2 s of the last call the
// run message announces, and the warning and the reminder keep their
// times too (run-timer), not the next minute's tick.
func TestJourneyLastCallOnTime(t *testing.T) {
	const (
		lastCall    = 5 * time.Second
		warnBefore  = 2 * time.Second
		remindAfter = 2 * time.Second
		bound       = 2 * time.Second
	)
	s := startStack(t, map[string]string{
		"COFFEE_LAST_CALL": lastCall.String(), "COFFEE_WARN_BEFORE": warnBefore.String(), "COFFEE_REMIND_AFTER": remindAfter.String(),
	})
	ctx := context.Background()
	p := devstack.NewPlayer(s, "C0ONTIME")
	db := openDB(t, s.DatabaseURL)

	_, err := p.Command(ctx, alice, "/coffee", "")
	must(t, err)
	msg, runID, err := p.RunMessage(ctx)
	must(t, err)
	_, err = p.Submit(ctx, alice, "latte", "small", "")
	must(t, err)
	_, err = p.WaitThread(ctx, msg.TS, "runs in the last 30 days")
	must(t, err)

	var lastCallAt, warnedAt, closedAt, dmAt time.Time
	must(t, db.QueryRow(ctx, `SELECT last_call_at, last_call_warned_at, closed_at FROM coffee_runs WHERE id = $1`, runID).
		Scan(&lastCallAt, &warnedAt, &closedAt))
	// The run message announces this very time.
	if !strings.Contains(string(msg.Blocks), fmt.Sprintf("date^%d^", lastCallAt.Unix())) {
		t.Fatalf("run message does not announce last call %v: %s", lastCallAt, msg.Blocks)
	}
	checkOnTime(t, "last call", lastCallAt, closedAt, bound)
	checkOnTime(t, "warning", lastCallAt.Add(-warnBefore), warnedAt, bound)

	_, err = p.WaitDM(ctx, alice, "Reminder")
	must(t, err)
	var remindedAt time.Time
	must(t, db.QueryRow(ctx, `SELECT occurred_at FROM audit_logs WHERE run_id = $1 AND event_type = 'runner_dmed'`, runID).Scan(&dmAt))
	must(t, db.QueryRow(ctx, `SELECT occurred_at FROM audit_logs WHERE run_id = $1 AND event_type = 'reminder_due'`, runID).Scan(&remindedAt))
	checkOnTime(t, "reminder", dmAt.Add(remindAfter), remindedAt, bound)
	if n := count(t, db, `SELECT count(*) FROM audit_logs WHERE run_id = $1 AND event_type = 'run_closed'`, runID); n != 1 {
		t.Fatalf("%d run_closed rows, want 1", n)
	}
}

// checkOnTime fails unless what happened at got, no earlier than due and
// at most bound after it.
func checkOnTime(t *testing.T, what string, due, got time.Time, bound time.Duration) {
	t.Helper()
	late := got.Sub(due)
	t.Logf("%s: due %s, happened %v after", what, due.Format(time.RFC3339Nano), late.Round(time.Millisecond))
	if late < 0 || late > bound {
		t.Errorf("%s happened %v after it was due, want within [0, %v]", what, late, bound)
	}
}
