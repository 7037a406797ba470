package blocks

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/coffeebuddy/coffeebuddy/shared/coffee"
	"github.com/slack-go/slack"
)

var runnerOrders = []coffee.Order{
	{UserID: "U0ALICE", Drink: "latte", Size: "large", Customizations: "oat milk"},
	{UserID: "U0BOB", Drink: "mocha", Size: "small", Customizations: "<!channel> *bold* & <@U0EVE>"},
	{UserID: "U0CAROL", Drink: "latte", Size: "large"},
}

func closedRun(runner, volunteer, reason string) coffee.Run {
	r := sampleRun
	r.Status, r.RunnerUserID, r.VolunteerUserID, r.AssignmentReason = coffee.StatusClosed, runner, volunteer, reason
	return r
}

func TestRunnerRepliesGolden(t *testing.T) {
	fair := closedRun("U0CAROL", "", "0 runs in the last 30 days; team median 2")
	volunteer := closedRun("U0BOB", "U0BOB", "volunteered")
	nobody := closedRun("", "", "nobody ordered")
	golden(t, "runner_assignment_fair", AssignmentReply(fair, "last_call"))
	golden(t, "runner_assignment_volunteer", AssignmentReply(volunteer, "U0ALICE"))
	golden(t, "runner_assignment_nobody_last_call", AssignmentReply(nobody, "last_call"))
	golden(t, "runner_assignment_nobody_closed_now", AssignmentReply(nobody, "U0ALICE"))
	golden(t, "runner_dm", RunnerDM(fair, runnerOrders))
	golden(t, "runner_dm_volunteer", RunnerDM(volunteer, runnerOrders[:1]))
	golden(t, "runner_reminder", RunnerReminder(fair, runnerOrders))
	done := fair
	done.Status = coffee.StatusCompleted
	golden(t, "runner_completion", CompletionReply(done, runnerOrders))
	alone := closedRun("U0ALICE", "U0ALICE", "volunteered")
	golden(t, "runner_completion_alone", CompletionReply(alone, runnerOrders[:1]))
	done.CompletedAt = time.Date(2026, 11, 20, 10, 5, 0, 0, time.UTC)
	golden(t, "runner_dm_done", RunnerDMDone(done, runnerOrders))
}

// TestRunnerDMDoneHasNoButton: once complete, the DM keeps the orders but
// offers nothing to press, and says when.
func TestRunnerDMDoneHasNoButton(t *testing.T) {
	run := closedRun("U0CAROL", "", "fair")
	run.Status, run.CompletedAt = coffee.StatusCompleted, time.Date(2026, 11, 20, 10, 5, 0, 0, time.UTC)
	dm := RunnerDMDone(run, runnerOrders)
	for _, b := range dm.Blocks {
		if _, ok := b.(*slack.ActionBlock); ok {
			t.Fatal("a completed run's DM still has buttons")
		}
	}
	var buf strings.Builder
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(dm.Blocks); err != nil {
		t.Fatal(err)
	}
	raw := buf.String()
	for _, want := range []string{"Completed", fmt.Sprintf("<!date^%d^", run.CompletedAt.Unix()), "Large Latte", "oat milk"} {
		if !strings.Contains(raw, want) {
			t.Errorf("done DM lacks %q: %s", want, raw)
		}
	}
}

// TestRunnerDMHasTheButton pins what run-complete routes on.
func TestRunnerDMHasTheButton(t *testing.T) {
	run := closedRun("U0CAROL", "", "0 runs in the last 30 days; team median 2")
	for _, dm := range []Message{RunnerDM(run, runnerOrders), RunnerReminder(run, runnerOrders)} {
		var btn *slack.ButtonBlockElement
		for _, b := range dm.Blocks {
			if a, ok := b.(*slack.ActionBlock); ok {
				btn = a.Elements.ElementSet[0].(*slack.ButtonBlockElement)
			}
		}
		if btn == nil || btn.ActionID != ActionComplete || btn.Value != run.ID.String() || btn.Style != slack.StylePrimary ||
			btn.Text.Text != "Mark complete" {
			t.Fatalf("Mark complete button = %+v", btn)
		}
	}
}

// TestRunnerDMKeepsCustomizationsLiteral: hostile customizations reach the
// DM only as plain rich-text, and a stored reason is escaped.
func TestRunnerDMKeepsCustomizationsLiteral(t *testing.T) {
	hostile := "<!channel> *bold* <@U0EVE> &"
	run := closedRun("U1", "", "<!here> & co")
	dm := RunnerDM(run, []coffee.Order{{UserID: "U1", Drink: "latte", Size: "small", Customizations: hostile}})
	var found bool
	for _, b := range dm.Blocks {
		switch b := b.(type) {
		case *slack.SectionBlock:
			if strings.Contains(b.Text.Text, hostile) || strings.Contains(b.Text.Text, "<!here>") {
				t.Errorf("untrusted text reached mrkdwn: %q", b.Text.Text)
			}
		case *slack.RichTextBlock:
			item := b.Elements[0].(*slack.RichTextList).Elements[0].(*slack.RichTextSection)
			found = item.Elements[1].(*slack.RichTextSectionTextElement).Text == ": Small Latte ("+hostile+")"
		}
	}
	if !found {
		t.Errorf("customization not shown verbatim in a plain text element")
	}
	if !strings.Contains(dm.Blocks[0].(*slack.SectionBlock).Text.Text, "&lt;!here&gt; &amp; co") {
		t.Errorf("reason not escaped: %q", dm.Blocks[0].(*slack.SectionBlock).Text.Text)
	}
}

func TestCompletionReplyTagsEveryOrdererOnce(t *testing.T) {
	run := closedRun("U0BOB", "", "")
	orders := append(runnerOrders, coffee.Order{UserID: "U0ALICE", Drink: "mocha", Size: "small"}) // listed twice
	text := CompletionReply(run, orders).Text
	for _, u := range []string{"U0ALICE", "U0BOB", "U0CAROL"} {
		if n := strings.Count(text, "<@"+u+">"); n != 1 {
			t.Errorf("%s tagged %d times in %q", u, n, text)
		}
	}
}

func TestAssignmentReplyNeverMentionsAForgedCloser(t *testing.T) {
	nobody := closedRun("", "", "nobody ordered")
	if got := AssignmentReply(nobody, "<!channel>").Text; strings.Contains(got, "<!channel>") {
		t.Fatalf("closed_by reached the message: %q", got)
	}
}
