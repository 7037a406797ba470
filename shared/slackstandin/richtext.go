package slackstandin

import (
	"cmp"
	"encoding/json"
	"html/template"
	"strconv"
	"strings"
)

// Block Kit rich_text as a Slack client draws it. Unlike mrkdwn, a
// rich-text "text" element is shown exactly as written: no formatting
// characters, no control sequences (CoffeeBuddy puts customizations there
// for that reason), only the element's style. Mentions, emoji, links and
// dates are elements of their own. Text is escaped as in mrkdwn.go.

type richElement struct {
	Type     string            `json:"type"`
	Elements []json.RawMessage `json:"elements"`
	Style    json.RawMessage   `json:"style"` // an object on inline elements, "bullet"/"ordered" on lists
	Indent   int               `json:"indent"`
	Offset   int               `json:"offset"`

	Text        string `json:"text"`
	URL         string `json:"url"`
	UserID      string `json:"user_id"`
	UsergroupID string `json:"usergroup_id"`
	ChannelID   string `json:"channel_id"`
	Name        string `json:"name"`
	Unicode     string `json:"unicode"`
	Range       string `json:"range"`
	Timestamp   int64  `json:"timestamp"`
	Format      string `json:"format"`
	Fallback    string `json:"fallback"`
	Value       string `json:"value"`
}

type richStyle struct {
	Bold, Italic, Strike, Code bool
}

func (e richElement) inlineStyle() richStyle {
	var st richStyle
	_ = json.Unmarshal(e.Style, &st) // a list's "bullet" string leaves it zero
	return st
}

func (e richElement) listStyle() string {
	var s string
	_ = json.Unmarshal(e.Style, &s)
	return s
}

// renderRichText renders a rich_text block's elements.
func renderRichText(elems []json.RawMessage, n names) template.HTML {
	var b strings.Builder
	for _, raw := range elems {
		var e richElement
		if json.Unmarshal(raw, &e) != nil {
			continue
		}
		switch e.Type {
		case "rich_text_section":
			b.WriteString(`<div class="rt-section">`)
			n.richInline(&b, e.Elements)
			b.WriteString(`</div>`)
		case "rich_text_list":
			tag := "ul"
			start := ""
			if e.listStyle() == "ordered" {
				tag = "ol"
				start = ` start="` + strconv.Itoa(e.Offset+1) + `"`
			}
			b.WriteString(`<` + tag + ` class="rt-list indent-` + strconv.Itoa(min(max(e.Indent, 0), 8)) + `"` + start + `>`)
			for _, item := range e.Elements {
				var it richElement
				if json.Unmarshal(item, &it) != nil {
					continue
				}
				b.WriteString(`<li>`)
				n.richInline(&b, it.Elements)
				b.WriteString(`</li>`)
			}
			b.WriteString(`</` + tag + `>`)
		case "rich_text_preformatted":
			b.WriteString(`<pre class="md-pre">`)
			n.richInline(&b, e.Elements)
			b.WriteString(`</pre>`)
		case "rich_text_quote":
			b.WriteString(`<blockquote class="md-quote">`)
			n.richInline(&b, e.Elements)
			b.WriteString(`</blockquote>`)
		default:
			b.WriteString(`<div class="unsupported">` + esc("["+e.Type+"]") + `</div>`)
		}
	}
	return template.HTML(b.String())
}

// richInline renders a section's inline elements.
func (n names) richInline(b *strings.Builder, elems []json.RawMessage) {
	for _, raw := range elems {
		var e richElement
		if json.Unmarshal(raw, &e) != nil {
			continue
		}
		st := e.inlineStyle()
		open, closeTags := styleTags(st)
		b.WriteString(open)
		switch e.Type {
		case "text":
			b.WriteString(strings.ReplaceAll(esc(e.Text), "\n", "<br>"))
		case "user":
			b.WriteString(n.mention(e.UserID, "").html)
		case "usergroup":
			b.WriteString(`<span class="mention">@` + esc(e.UsergroupID) + `</span>`)
		case "channel":
			b.WriteString(`<span class="mention channel">` + esc(n.channelLabel(e.ChannelID, "")) + `</span>`)
		case "broadcast":
			b.WriteString(`<span class="mention broadcast">@` + esc(e.Range) + `</span>`)
		case "emoji":
			b.WriteString(richEmoji(e))
		case "link":
			text := cmp.Or(e.Text, e.URL)
			if href, ok := safeHref(e.URL); ok {
				b.WriteString(`<a href="` + esc(href) + `" target="_blank" rel="noopener noreferrer">` + esc(text) + `</a>`)
			} else {
				b.WriteString(esc(text))
			}
		case "date":
			b.WriteString(timeToken(e.Timestamp, e.Format, e.Fallback).html)
		case "color":
			b.WriteString(esc(e.Value))
		default:
			b.WriteString(`<span class="unsupported">` + esc("["+e.Type+"]") + `</span>`)
		}
		b.WriteString(closeTags)
	}
}

func styleTags(st richStyle) (string, string) {
	var open, closeTags string
	for _, t := range []struct {
		on  bool
		tag string
	}{{st.Bold, "b"}, {st.Italic, "i"}, {st.Strike, "s"}, {st.Code, "code"}} {
		if t.on {
			open += "<" + t.tag + ">"
			closeTags = "</" + t.tag + ">" + closeTags
		}
	}
	return open, closeTags
}

// richEmoji draws an emoji element from its name, or from the code points
// Slack sends along ("2615" or "1f3c3-200d-2642-fe0f").
func richEmoji(e richElement) string {
	if c, ok := emojiChar(e.Name); ok {
		return emojiHTML(e.Name, c)
	}
	if e.Unicode != "" {
		var s strings.Builder
		for cp := range strings.SplitSeq(e.Unicode, "-") {
			v, err := strconv.ParseUint(cp, 16, 32)
			if err != nil || v > 0x10FFFF {
				s.Reset()
				break
			}
			s.WriteRune(rune(v))
		}
		if s.Len() > 0 {
			return emojiHTML(e.Name, s.String())
		}
	}
	return esc(":" + e.Name + ":")
}
