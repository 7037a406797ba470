package blocks

import (
	"fmt"

	"github.com/coffeebuddy/coffeebuddy/shared/coffee"
	"github.com/slack-go/slack"
)

// Ephemeral notices of the order group. They hold no user text.
const (
	// RunClosedNotice answers an order (modal or My usual) for a run that no
	// longer takes orders.
	RunClosedNotice = "This coffee run has closed, so your order wasn't added. Start a new one with /coffee."
	// NoUsualNotice answers My usual from someone with no order history.
	NoUsualNotice = "You don't have a usual yet. Use *Add my order* and I'll remember it."
)

// ConfirmKind says which confirmation an orderer gets.
type ConfirmKind int

// Confirmation kinds.
const (
	ConfirmNew    ConfirmKind = iota // first order in the run
	ConfirmEdited                    // replaced their earlier order
	ConfirmUsual                     // placed with My usual
)

// Kind picks the confirmation for an order.placed fact.
func Kind(edited, usual bool) ConfirmKind {
	switch {
	case usual:
		return ConfirmUsual
	case edited:
		return ConfirmEdited
	}
	return ConfirmNew
}

func (k ConfirmKind) lead() string {
	switch k {
	case ConfirmEdited:
		return "☕ Order updated: "
	case ConfirmUsual:
		return "☕ Your usual is in: "
	}
	return "☕ Your order is in: "
}

// OrderConfirmation is the ephemeral that tells the orderer their order is
// stored, e.g. "☕ Your order is in: Large Latte (oat milk)". The
// customization is a plain rich-text element: shown exactly as typed, no
// mrkdwn, no mentions.
func OrderConfirmation(k ConfirmKind, o coffee.Order) []slack.Block {
	elems := []slack.RichTextSectionElement{
		slack.NewRichTextSectionTextElement(k.lead(), nil),
		slack.NewRichTextSectionTextElement(Label(o.Size)+" "+Label(o.Drink), &slack.RichTextSectionTextStyle{Bold: true}),
	}
	if o.Customizations != "" {
		elems = append(elems, slack.NewRichTextSectionTextElement(" ("+o.Customizations+")", nil))
	}
	return []slack.Block{
		slack.NewRichTextBlock("order_confirmation", slack.NewRichTextSection(elems...)),
		slack.NewContextBlock("order_confirmation_hint",
			mrkdwn("Changed your mind? Press *Add my order* again before last call; your order is replaced, not added.")),
	}
}

// OrderConfirmationText is the notification fallback of OrderConfirmation,
// with the customization escaped.
func OrderConfirmationText(k ConfirmKind, o coffee.Order) string {
	s := k.lead() + Label(o.Size) + " " + Label(o.Drink)
	if o.Customizations != "" {
		s += fmt.Sprintf(" (%s)", Escape(o.Customizations))
	}
	return s
}
