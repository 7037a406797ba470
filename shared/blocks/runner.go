package blocks

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/coffeebuddy/coffeebuddy/shared/coffee"
	"github.com/slack-go/slack"
)

// oneLine is a reply of one mrkdwn line. Only ids and text we wrote go in
// it; anything stored goes through Escape.
func oneLine(blockID, text string) Message {
	return Message{Text: text, Blocks: []slack.Block{
		slack.NewSectionBlock(mrkdwn(text), nil, nil, slack.SectionBlockOptionBlockID(blockID)),
	}}
}

// slackUserID matches a Slack user id, the only thing put in a mention.
var slackUserID = regexp.MustCompile(`^[UW][A-Z0-9]+$`)

// AssignmentReply is the thread reply when a run closes: who goes and why,
// or, when nobody ordered, a friendly note that the run is over. closedBy
// is events.RunClosed.ClosedBy ("last_call" or the initiator's id).
func AssignmentReply(run coffee.Run, closedBy string) Message {
	switch {
	case run.RunnerUserID == "" && slackUserID.MatchString(closedBy):
		return oneLine("assignment", fmt.Sprintf(
			":coffee: <@%s> closed the run. Nobody ordered this time, so there's nothing to fetch.", closedBy))
	case run.RunnerUserID == "":
		return oneLine("assignment", ":coffee: Last call! Nobody ordered this time, so the run is closed.")
	case run.VolunteerUserID == run.RunnerUserID:
		return oneLine("assignment", fmt.Sprintf(":runner: <@%s> volunteered to go.", run.RunnerUserID))
	}
	return oneLine("assignment", fmt.Sprintf(":runner: <@%s> is going this time: %s.",
		run.RunnerUserID, Escape(run.AssignmentReason)))
}

// RunnerDM is the direct message the runner gets when assigned: every
// order, per-drink totals and the *Mark complete* button.
func RunnerDM(run coffee.Run, orders []coffee.Order) Message {
	head := fmt.Sprintf(":runner: *You're on coffee duty!* <@%s>'s run in <#%s> closed with %s.",
		run.InitiatorUserID, run.ChannelID, plural(len(orders), "order"))
	if run.VolunteerUserID != "" && run.VolunteerUserID == run.RunnerUserID {
		head += "\nYou volunteered: thank you!"
	} else if run.AssignmentReason != "" {
		head += "\nWhy you: " + Escape(run.AssignmentReason) + "."
	}
	text := fmt.Sprintf("You're on coffee duty: %s from <#%s>.", plural(len(orders), "order"), run.ChannelID)
	return runnerDM(run, orders, text, head)
}

// RunnerReminder is the DM that follows when the runner has not marked the
// run complete: the same orders, totals and button.
func RunnerReminder(run coffee.Run, orders []coffee.Order) Message {
	head := fmt.Sprintf(":alarm_clock: *Reminder:* <@%s>'s coffee run in <#%s> is not marked complete yet.",
		run.InitiatorUserID, run.ChannelID)
	text := fmt.Sprintf("Reminder: the coffee run in <#%s> is not marked complete yet.", run.ChannelID)
	return runnerDM(run, orders, text, head)
}

// RunnerDMDone replaces the runner's DMs (the assignment and any reminder)
// once the run is complete: the same orders and totals, no live button,
// and when it was completed.
func RunnerDMDone(run coffee.Run, orders []coffee.Order) Message {
	head := fmt.Sprintf(":white_check_mark: *Completed* %s: <@%s>'s coffee run in <#%s>, %s. Thank you!",
		Date(run.CompletedAt, "{date_short_pretty} at {time}"), run.InitiatorUserID, run.ChannelID, plural(len(orders), "order"))
	text := fmt.Sprintf("Coffee run in <#%s> completed.", run.ChannelID)
	return Message{Text: text, Blocks: runnerBody(head, orders)}
}

// runnerBody is a runner DM's head, every order and the totals.
func runnerBody(head string, orders []coffee.Order) []slack.Block {
	bl := []slack.Block{slack.NewSectionBlock(mrkdwn(head), nil, nil, slack.SectionBlockOptionBlockID("runner_head"))}
	bl = append(bl, OrderBlocks(orders)...)
	if t := TotalsLine(orders); t != "" {
		bl = append(bl, slack.NewContextBlock("runner_totals", mrkdwn(t)))
	}
	return bl
}

func runnerDM(run coffee.Run, orders []coffee.Order, text, head string) Message {
	bl := runnerBody(head, orders)
	bl = append(bl,
		slack.NewActionBlock("runner_actions",
			slack.NewButtonBlockElement(ActionComplete, run.ID.String(), plain("Mark complete")).WithStyle(slack.StylePrimary)),
		slack.NewContextBlock("runner_context",
			mrkdwn("Press *Mark complete* once everyone has their coffee: the channel gets told.")),
	)
	return Message{Text: text, Blocks: bl}
}

// CompletionReply is the thread reply when the runner marks the run
// complete. It tags every orderer exactly once: the runner, who may have
// ordered too, is tagged in the thanks.
func CompletionReply(run coffee.Run, orders []coffee.Order) Message {
	seen := map[string]bool{run.RunnerUserID: true}
	var tags []string
	for _, o := range orders {
		if !seen[o.UserID] {
			seen[o.UserID] = true
			tags = append(tags, fmt.Sprintf("<@%s>", o.UserID))
		}
	}
	if len(tags) == 0 {
		return oneLine("completion", fmt.Sprintf(":white_check_mark: Coffee's here! Thanks <@%s>!", run.RunnerUserID))
	}
	return oneLine("completion", fmt.Sprintf(":white_check_mark: Coffee's here! %s — thanks <@%s>!",
		strings.Join(tags, " "), run.RunnerUserID))
}
