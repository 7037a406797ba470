package blocks

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/coffeebuddy/coffeebuddy/shared/coffee"
	"github.com/slack-go/slack"
)

// LastCallWarning is the thread reply shortly before a run's last call. The
// time is Slack date formatting, so each reader sees it in their own zone.
func LastCallWarning(run coffee.Run) Message {
	text := fmt.Sprintf(":alarm_clock: Last call %s! Get your orders in.", Date(run.LastCallAt, "{time}"))
	return Message{Text: text, Blocks: []slack.Block{
		slack.NewSectionBlock(mrkdwn(text), nil, nil),
	}}
}

// MaxReasonShown bounds how much of a cancel reason a notice shows (Slack
// rejects oversized blocks); the database keeps it all.
const MaxReasonShown = 500

// CancelNotice is the thread reply telling every orderer that canceller
// cancelled the run. The reason is untrusted: in the blocks it is a plain
// rich-text element, shown exactly as typed (`*bold*` stays literal,
// `<!channel>` pings nobody); in the fallback text it is escaped.
func CancelNotice(canceller, reason string, orderers []string) Message {
	reason = clipRunes(strings.TrimSpace(reason), MaxReasonShown)
	var text strings.Builder
	fmt.Fprintf(&text, ":x: <@%s> cancelled this coffee run", canceller)
	els := []slack.RichTextSectionElement{
		slack.NewRichTextSectionEmojiElement("x", 0, nil),
		slack.NewRichTextSectionTextElement(" ", nil),
		slack.NewRichTextSectionUserElement(canceller, nil),
	}
	if reason == "" {
		text.WriteString(".")
		els = append(els, slack.NewRichTextSectionTextElement(" cancelled this coffee run.", nil))
	} else {
		fmt.Fprintf(&text, " (reason: %s).", Escape(reason))
		els = append(els,
			slack.NewRichTextSectionTextElement(" cancelled this coffee run (reason: ", nil),
			slack.NewRichTextSectionTextElement(reason, nil),
			slack.NewRichTextSectionTextElement(").", nil))
	}
	if len(orderers) > 0 {
		for _, u := range orderers {
			fmt.Fprintf(&text, " <@%s>", u)
			els = append(els, slack.NewRichTextSectionTextElement(" ", nil), slack.NewRichTextSectionUserElement(u, nil))
		}
		text.WriteString(" your orders are off.")
		els = append(els, slack.NewRichTextSectionTextElement(" your orders are off.", nil))
	}
	return Message{Text: text.String(), Blocks: []slack.Block{
		slack.NewRichTextBlock("run_cancelled", slack.NewRichTextSection(els...)),
	}}
}

// Answers to /coffee-cancel that cancel nothing, shown to the caller only.
const (
	CancelNoRunText     = "There's no coffee run to cancel in this channel."
	CancelCompletedText = "This coffee run is already complete, so it can't be cancelled."
)

// CancelRefusal is the ephemeral answer to a /coffee-cancel that was not
// allowed: err is coffee.ErrRunNotFound, coffee.ErrAlreadyCompleted or
// coffee.ErrNotAllowed (run says who may cancel). ok is false for any other
// error.
func CancelRefusal(err error, run coffee.Run) (e Ephemeral, ok bool) {
	switch {
	case err == nil:
		return Ephemeral{}, false
	case errors.Is(err, coffee.ErrRunNotFound):
		return EphemeralText(CancelNoRunText), true
	case errors.Is(err, coffee.ErrAlreadyCompleted):
		return EphemeralText(CancelCompletedText), true
	case errors.Is(err, coffee.ErrNotAllowed):
		if run.RunnerUserID == "" || run.RunnerUserID == run.InitiatorUserID {
			return EphemeralText(fmt.Sprintf("Only <@%s> (who started it) can cancel this run.", run.InitiatorUserID)), true
		}
		return EphemeralText(fmt.Sprintf("Only <@%s> (who started it) or <@%s> (the runner) can cancel this run.",
			run.InitiatorUserID, run.RunnerUserID)), true
	}
	return Ephemeral{}, false
}

// clipRunes shortens s to at most n runes, marking the cut with an ellipsis.
func clipRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// CannotPostNotice tells whoever typed /coffee why their run has no message:
// Slack refused it with code (see run-announce).
func CannotPostNotice(code string) string {
	switch code {
	case "is_archived":
		return ":no_entry: This channel is archived, so there can be no coffee run here."
	case "not_in_channel", "channel_not_found", "method_not_supported_for_channel_type", "missing_scope":
		return ":lock: I can't post in this channel because I'm not a member of it. " +
			"Invite me with `/invite @coffeebuddy`, then start the run again with `/coffee`."
	}
	return fmt.Sprintf(":warning: Slack would not take the coffee run message (%s), so the run is cancelled. "+
		"Please try `/coffee` again; if it keeps happening, tell whoever runs CoffeeBuddy.", Escape(code))
}

// RunAlreadyOpenNotice answers a /coffee in a channel whose run is already
// taking orders (or was started a moment earlier by someone else): which
// run the caller's order form belongs to and its actual last call. asked
// says the caller gave a last call of their own, which only a new run takes.
func RunAlreadyOpenNotice(run coffee.Run, caller string, asked bool) string {
	whose := fmt.Sprintf("<@%s>'s coffee run", run.InitiatorUserID)
	if run.InitiatorUserID == caller {
		whose = "Your coffee run"
	}
	text := fmt.Sprintf(":coffee: %s is already taking orders here: last call is %s. Your order form is for that run.",
		whose, Date(run.LastCallAt, "{time}"))
	if asked {
		text += " (The time you gave only applies when starting a new run.)"
	}
	return text
}
