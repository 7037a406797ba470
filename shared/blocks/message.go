package blocks

import "github.com/slack-go/slack"

// Message is a message to post: Text is the notification and screen-reader
// fallback, Blocks what Slack shows.
type Message struct {
	Text   string        `json:"text"`
	Blocks []slack.Block `json:"blocks"`
}

// Options returns the chat.postMessage options that send m.
func (m Message) Options() []slack.MsgOption {
	return []slack.MsgOption{slack.MsgOptionText(m.Text, false), slack.MsgOptionBlocks(m.Blocks...)}
}
