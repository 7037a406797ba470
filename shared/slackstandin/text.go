package slackstandin

import (
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// transcribe writes lines to Options.Transcript, one per line.
func (s *Server) transcribe(lines []string) {
	if s.opts.Transcript == nil || len(lines) == 0 {
		return
	}
	var b strings.Builder
	for _, l := range lines {
		if l != "" {
			b.WriteString(l)
			b.WriteByte('\n')
		}
	}
	s.transcriptMu.Lock()
	defer s.transcriptMu.Unlock()
	if _, err := strings.NewReader(b.String()).WriteTo(s.opts.Transcript); err != nil {
		s.log.Warn("writing transcript", "err", err)
	}
}

// place is a conversation label: "#C0LOCAL", "DM @alice", "group DM".
// s.mu must be held (it reads DM owners).
func (s *Server) place(ch string) string {
	switch {
	case strings.HasPrefix(ch, "D"):
		if u, ok := s.st.dmUsers[ch]; ok {
			return "DM @" + s.displayName(u)
		}
		return "DM " + ch
	case strings.HasPrefix(ch, "G"):
		return "group DM " + ch
	}
	return "#" + ch
}

// messageLine renders one transcript line for m; note is "edited",
// "deleted" or "". s.mu must be held.
func (s *Server) messageLine(m *Message, note string) string {
	var b strings.Builder
	b.WriteString("[" + s.place(m.Channel) + "] ")
	if m.ThreadTS != "" && m.ThreadTS != m.TS {
		b.WriteString("  ↳ (thread) ")
	}
	if m.Ephemeral {
		b.WriteString("(only @" + s.displayName(m.Recipient) + " sees) ")
	}
	if note != "" {
		b.WriteString("(" + note + ") ")
	}
	author := m.Username
	if author == "" {
		author = s.displayName(m.User)
	}
	b.WriteString(author + ": ")
	b.WriteString(oneLine(s.humanize(messageText(m.Text, m.Blocks))))
	return b.String()
}

// viewLine renders one transcript line for a modal; note is "pushed",
// "updated", "closed" or "". s.mu must be held.
func (s *Server) viewLine(v *View, note string) string {
	who := "@" + s.displayName(v.User)
	if v.User == "" {
		who = "trigger " + v.TriggerID
	}
	line := "[modal for " + who + "] "
	if note != "" {
		line += "(" + note + ") "
	}
	title := v.Title
	if title == "" {
		title = v.CallbackID
	}
	return line + oneLine(title)
}

func oneLine(s string) string {
	s = strings.TrimSpace(s)
	s = strings.ReplaceAll(s, "\r\n", "\n")
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool { return r == '\n' }), " / ")
}

// messageText is the message's text, or the text of its blocks when the
// text is empty.
func messageText(text string, blocks json.RawMessage) string {
	if strings.TrimSpace(text) != "" || len(blocks) == 0 {
		return text
	}
	var lines []string
	for _, b := range parseBlocks(blocks) {
		if b.Text != "" && b.Kind != "actions" {
			lines = append(lines, b.Text)
		}
	}
	return strings.Join(lines, "\n")
}

// renderedBlock is a Block Kit block reduced to what a reader sees.
type renderedBlock struct {
	Kind    string // section, context, header, divider, actions, input, other
	Text    string
	Buttons []string
}

type textObject struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

type rawBlock struct {
	Type     string            `json:"type"`
	Text     *textObject       `json:"text"`
	Fields   []textObject      `json:"fields"`
	Elements []json.RawMessage `json:"elements"`
	Label    *textObject       `json:"label"`
}

type rawElement struct {
	Type     string            `json:"type"`
	Text     json.RawMessage   `json:"text"`
	Elements []json.RawMessage `json:"elements"`
}

// parseBlocks reduces Block Kit JSON to readable parts; unknown or broken
// blocks are skipped.
func parseBlocks(raw json.RawMessage) []renderedBlock {
	var blocks []rawBlock
	if json.Unmarshal(raw, &blocks) != nil {
		return nil
	}
	var out []renderedBlock
	for _, b := range blocks {
		rb := renderedBlock{Kind: b.Type}
		switch b.Type {
		case "section", "header":
			var parts []string
			if b.Text != nil && b.Text.Text != "" {
				parts = append(parts, b.Text.Text)
			}
			for _, f := range b.Fields {
				parts = append(parts, f.Text)
			}
			rb.Text = strings.Join(parts, "\n")
		case "context":
			var parts []string
			for _, e := range b.Elements {
				var el rawElement
				if json.Unmarshal(e, &el) == nil && (el.Type == "mrkdwn" || el.Type == "plain_text") {
					var t string
					_ = json.Unmarshal(el.Text, &t)
					parts = append(parts, t)
				}
			}
			rb.Text = strings.Join(parts, "  ")
		case "actions":
			for _, e := range b.Elements {
				var el rawElement
				if json.Unmarshal(e, &el) == nil && el.Type == "button" {
					var t textObject
					_ = json.Unmarshal(el.Text, &t)
					rb.Buttons = append(rb.Buttons, t.Text)
				}
			}
		case "rich_text":
			rb.Text = richText(b.Elements)
		case "input":
			if b.Label != nil {
				rb.Text = b.Label.Text
			}
		case "divider":
		default:
			rb.Kind = "other"
		}
		out = append(out, rb)
	}
	return out
}

func richText(elems []json.RawMessage) string {
	var b strings.Builder
	for _, e := range elems {
		var el rawElement
		if json.Unmarshal(e, &el) != nil {
			continue
		}
		if el.Type == "text" {
			var t string
			_ = json.Unmarshal(el.Text, &t)
			b.WriteString(t)
		}
		b.WriteString(richText(el.Elements))
	}
	return b.String()
}

// slackToken matches Slack's mrkdwn control sequences: mentions, channel
// links, special commands, dates and links.
var slackToken = regexp.MustCompile(`<((?:@[UWB][A-Z0-9]+|#[CGD][A-Z0-9]+|![a-z^][^<>|]*|(?:https?|mailto|tel|slack):[^<>|]*))(?:\|([^<>]*))?>`)

// humanize turns Slack mrkdwn control sequences into what a reader sees and
// undoes Slack's &amp; &lt; &gt; escaping. The result is plain text (not
// HTML-safe).
func (s *Server) humanize(text string) string {
	text = slackToken.ReplaceAllStringFunc(text, func(tok string) string {
		m := slackToken.FindStringSubmatch(tok)
		target, label := m[1], m[2]
		switch target[0] {
		case '@':
			if label != "" {
				return "@" + strings.TrimPrefix(label, "@")
			}
			return "@" + s.displayName(target[1:])
		case '#':
			if label != "" {
				return "#" + label
			}
			return "#" + s.channelName(target[1:])
		case '!':
			return specialCommand(target[1:], label)
		}
		if label != "" {
			return label
		}
		return strings.TrimPrefix(target, "mailto:")
	})
	return strings.NewReplacer("&amp;", "&", "&lt;", "<", "&gt;", ">").Replace(replaceEmoji(text))
}

func specialCommand(cmd, label string) string {
	switch {
	case cmd == "here" || cmd == "channel" || cmd == "everyone":
		return "@" + cmd
	case strings.HasPrefix(cmd, "subteam^"):
		if label != "" {
			return label
		}
		return "@group"
	case strings.HasPrefix(cmd, "date^"):
		parts := strings.Split(cmd, "^")
		if len(parts) >= 2 {
			if sec, err := strconv.ParseInt(parts[1], 10, 64); err == nil {
				return time.Unix(sec, 0).Local().Format("Mon 15:04 MST")
			}
		}
	}
	return label
}
