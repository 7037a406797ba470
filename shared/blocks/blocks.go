// Package blocks builds every Slack message and modal CoffeeBuddy sends, as
// Block Kit. Text a user typed goes through Escape, so it is shown as typed
// and can ping nobody. Golden files in testdata pin the JSON.
package blocks

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/coffeebuddy/coffeebuddy/shared/coffee"
	"github.com/slack-go/slack"
)

// Action and callback ids: the interaction handlers route on these.
const (
	ActionAddOrder  = "order_add"
	ActionMyUsual   = "order_usual"
	ActionVolunteer = "run_volunteer"
	ActionCloseNow  = "run_close_now"
	ActionComplete  = "run_complete"

	CallbackOrder    = "order_submit"
	BlockDrink       = "drink"
	BlockSize        = "size"
	BlockCustomize   = "customizations"
	MaxCustomization = coffee.MaxCustomization
)

// Escape makes untrusted text safe for mrkdwn: Slack's three control
// characters become entities, so `<!channel>` or `<@U123>` typed by a user
// render literally instead of pinging anyone.
func Escape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// Date renders t with Slack's date formatting so each reader sees it in
// their own time zone; fallback is what clients that cannot format show.
func Date(t time.Time, format string) string {
	return fmt.Sprintf("<!date^%d^%s|%s>", t.Unix(), format, t.UTC().Format("15:04 UTC"))
}

func mrkdwn(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.MarkdownType, s, false, false)
}
func plain(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.PlainTextType, s, true, false)
}

// RunMessage is the channel message that shows a run: posted once, then
// updated in place (chat.update) as orders come in and the run moves on.
func RunMessage(run coffee.Run, orders []coffee.Order) []slack.Block {
	bl := []slack.Block{slack.NewSectionBlock(mrkdwn(runHeadline(run)), nil, nil)}
	bl = append(bl, OrderBlocks(orders)...)
	if t := TotalsLine(orders); t != "" {
		bl = append(bl, slack.NewContextBlock("run_totals", mrkdwn(t)))
	}
	if run.Status != coffee.StatusActive {
		return bl
	}
	value := run.ID.String()
	bl = append(bl, slack.NewActionBlock("run_actions",
		slack.NewButtonBlockElement(ActionAddOrder, value, plain("Add my order")).WithStyle(slack.StylePrimary),
		slack.NewButtonBlockElement(ActionMyUsual, value, plain("My usual")),
		slack.NewButtonBlockElement(ActionVolunteer, value, plain("I'll go")),
		slack.NewButtonBlockElement(ActionCloseNow, value, plain("Close now")),
	))
	note := fmt.Sprintf("Only <@%s> can close the run early.", run.InitiatorUserID)
	if run.VolunteerUserID != "" {
		note = fmt.Sprintf(":raising_hand: <@%s> volunteered to go. ", run.VolunteerUserID) + note
	}
	return append(bl, slack.NewContextBlock("run_context", mrkdwn(note)))
}

func runHeadline(run coffee.Run) string {
	switch run.Status {
	case coffee.StatusClosed:
		if run.RunnerUserID == "" {
			return fmt.Sprintf(":coffee: Coffee run by <@%s>: closed, nobody ordered.", run.InitiatorUserID)
		}
		return fmt.Sprintf(":coffee: Coffee run by <@%s>: orders closed. <@%s> is going (%s).",
			run.InitiatorUserID, run.RunnerUserID, Escape(run.AssignmentReason))
	case coffee.StatusCompleted:
		return fmt.Sprintf(":white_check_mark: Coffee run by <@%s>: delivered by <@%s>.", run.InitiatorUserID, run.RunnerUserID)
	case coffee.StatusCancelled:
		return fmt.Sprintf(":x: Coffee run by <@%s>: cancelled.", run.InitiatorUserID)
	}
	return fmt.Sprintf(":coffee: <@%s> started a coffee run! Last call %s.", run.InitiatorUserID, Date(run.LastCallAt, "{time}"))
}

// OrderBlocks lists every order as rich text. Customizations go in plain
// text elements, which Slack shows exactly as typed: no mrkdwn (`*bold*`
// stays literal), no mentions (`<!channel>` pings nobody).
func OrderBlocks(orders []coffee.Order) []slack.Block {
	if len(orders) == 0 {
		return []slack.Block{slack.NewSectionBlock(mrkdwn("_No orders yet._"), nil, nil)}
	}
	items := make([]slack.RichTextElement, len(orders))
	for i, o := range orders {
		items[i] = OrderItem(o)
	}
	return []slack.Block{
		slack.NewSectionBlock(mrkdwn(fmt.Sprintf("*Orders (%d)*", len(orders))), nil, nil),
		slack.NewRichTextBlock("orders", slack.NewRichTextList(slack.RTEListBullet, 0, items...)),
	}
}

// OrderItem is one order as a rich-text line: the orderer, then drink and
// size, then the customization as literal text.
func OrderItem(o coffee.Order) *slack.RichTextSection {
	text := fmt.Sprintf(": %s %s", Label(o.Size), Label(o.Drink))
	if o.Customizations != "" {
		text += " (" + o.Customizations + ")"
	}
	return slack.NewRichTextSection(
		slack.NewRichTextSectionUserElement(o.UserID, nil),
		slack.NewRichTextSectionTextElement(text, nil),
	)
}

// TotalsLine is the per-drink count, e.g. "Totals: 2× Large Latte, 1× Small
// Mocha"; empty for no orders.
func TotalsLine(orders []coffee.Order) string {
	ts := coffee.Totals(orders)
	if len(ts) == 0 {
		return ""
	}
	parts := make([]string, len(ts))
	for i, t := range ts {
		parts[i] = fmt.Sprintf("%d× %s %s", t.Count, Label(t.Size), Label(t.Drink))
	}
	return "*Totals:* " + strings.Join(parts, ", ")
}

// RunMessageText is the notification and screen-reader fallback for
// RunMessage: the headline and how many orders there are.
func RunMessageText(run coffee.Run, orders int) string {
	return fmt.Sprintf("%s %s.", runHeadline(run), plural(orders, "order"))
}

// OrderMetadata travels in the modal's private_metadata so the submission
// finds its channel's run, and the answer reaches the orderer where they
// typed /coffee or clicked Add my order (that request's response_url: a
// view submission brings none of its own).
type OrderMetadata struct {
	TeamID      string `json:"team_id"`
	ChannelID   string `json:"channel_id"`
	ResponseURL string `json:"response_url,omitempty"`
}

// Drinks and sizes in the order the modal lists them.
var (
	Drinks = coffee.Drinks
	Sizes  = coffee.Sizes
)

// Label is the display form of a drink or size value.
func Label(v string) string {
	if v == "" {
		return ""
	}
	return strings.ToUpper(v[:1]) + v[1:]
}

// Prefill is what the order form starts with: the user's current order in
// the run when they are editing it (Editing), else their most frequent
// drink and size.
type Prefill struct {
	Drink, Size    string
	Customizations string
	Editing        bool
}

// OrderModal is the order form.
func OrderModal(meta OrderMetadata, pre Prefill) slack.ModalViewRequest {
	md, _ := json.Marshal(meta) // strings: cannot fail
	drink := selectInput(BlockDrink, "Drink", "Choose a drink", Drinks, pre.Drink)
	size := selectInput(BlockSize, "Size", "Choose a size", Sizes, pre.Size)
	custom := slack.NewPlainTextInputBlockElement(plain("e.g. oat milk, extra shot"), BlockCustomize)
	custom.MaxLength = MaxCustomization
	custom.InitialValue = pre.Customizations
	customBlock := slack.NewInputBlock(BlockCustomize, plain("Customizations"), plain(fmt.Sprintf("Up to %d characters.", MaxCustomization)), custom)
	customBlock.Optional = true
	title, submit := "Coffee order", "Place order"
	if pre.Editing {
		title, submit = "Change your order", "Update order"
	}
	return slack.ModalViewRequest{
		Type:            slack.VTModal,
		CallbackID:      CallbackOrder,
		Title:           plain(title),
		Submit:          plain(submit),
		Close:           plain("Cancel"),
		PrivateMetadata: string(md),
		Blocks:          slack.Blocks{BlockSet: []slack.Block{drink, size, customBlock}},
	}
}

func selectInput(id, label, placeholder string, values []string, initial string) *slack.InputBlock {
	opts := make([]*slack.OptionBlockObject, len(values))
	var init *slack.OptionBlockObject
	for i, v := range values {
		opts[i] = slack.NewOptionBlockObject(v, plain(Label(v)), nil)
		if v == initial {
			init = opts[i]
		}
	}
	sel := slack.NewOptionsSelectBlockElement(slack.OptTypeStatic, plain(placeholder), id, opts...)
	sel.InitialOption = init
	return slack.NewInputBlock(id, plain(label), nil, sel)
}

// Ephemeral is a short reply only the caller sees.
type Ephemeral struct {
	ResponseType string `json:"response_type"`
	Text         string `json:"text"`
}

// EphemeralText builds an ephemeral command response.
func EphemeralText(text string) Ephemeral { return Ephemeral{ResponseType: "ephemeral", Text: text} }
