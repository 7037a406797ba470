package slackstandin

import (
	"cmp"
	"html/template"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Slack's mrkdwn as a Slack client draws it, to HTML for the web page.
//
// Every piece of text goes through template.HTMLEscapeString (the escaper
// html/template uses) on its way out; the only markup written is the fixed
// tags below, and a link's href only for http, https, mailto and tel. Slack
// escapes exactly three characters (&amp; &lt; &gt;), so those are decoded
// first and shown as the characters they stand for: an escaped
// "&lt;!channel&gt;" reads "<!channel>" and pings nobody, while a real
// "<!channel>" control sequence is drawn as a mention.
//
// Supported: *bold*, _italic_, ~strike~, `code`, ```preformatted```,
// "> " quotes, line breaks, :emoji: shortcodes, and the control sequences
// <@U…>, <#C…>, <!here|channel|everyone>, <!subteam^…>, <!date^…> and
// <url|label>. A sequence it does not know is shown as typed.

// names resolves ids to what a reader sees; viewer's own mentions are
// highlighted, as Slack highlights mentions of you.
type names struct {
	user    func(id string) string
	channel func(id string) string
	viewer  string
}

func esc(s string) string { return template.HTMLEscapeString(s) }

// decodeEntities undoes Slack's escaping of & < >.
var decodeEntities = strings.NewReplacer("&amp;", "&", "&lt;", "<", "&gt;", ">").Replace

// placeholder runes stand for control sequences while the text around them
// is parsed for formatting. Text's own private-use characters are replaced
// first, so a user cannot forge one.
const (
	placeholderFirst = '\uE000'
	placeholderLast  = '\uF8FF'
)

const maxTokens = int(placeholderLast - placeholderFirst)

func isPlaceholder(r rune) bool { return r >= placeholderFirst && r <= placeholderLast }

// controlSequence matches <...> in mrkdwn: a literal < is always escaped,
// so a raw one opens a control sequence.
var controlSequence = regexp.MustCompile(`<([^<>]*)>`)

// mdToken is a rendered control sequence: its HTML, and its plain text for
// places that take no markup (code spans).
type mdToken struct{ html, text string }

// renderMrkdwn renders Slack mrkdwn text as HTML.
func renderMrkdwn(text string, n names) template.HTML {
	text = strings.Map(func(r rune) rune {
		if isPlaceholder(r) {
			return '\uFFFD'
		}
		return r
	}, text)
	var toks []mdToken
	text = controlSequence.ReplaceAllStringFunc(text, func(m string) string {
		if len(toks) > maxTokens {
			return m
		}
		t, ok := n.controlSequence(m[1 : len(m)-1])
		if !ok {
			return m
		}
		toks = append(toks, t)
		return string(placeholderFirst + rune(len(toks)-1))
	})
	r := mdRenderer{toks: toks}
	r.blocks(text)
	return template.HTML(r.b.String())
}

// renderPlain renders a plain_text object: escaped, with emoji shortcodes
// drawn when the object says emoji:true.
func renderPlain(text string, emoji bool) template.HTML {
	var r mdRenderer
	if emoji {
		r.emojiText(text)
	} else {
		r.b.WriteString(esc(text))
	}
	return template.HTML(r.b.String())
}

type mdRenderer struct {
	b    strings.Builder
	toks []mdToken
}

// blocks splits off ```preformatted``` runs, then quotes and lines.
func (r *mdRenderer) blocks(s string) {
	for {
		start := strings.Index(s, "```")
		if start < 0 {
			break
		}
		end := strings.Index(s[start+3:], "```")
		if end < 0 {
			break
		}
		r.lines(s[:start])
		code := strings.TrimPrefix(s[start+3:start+3+end], "\n")
		r.b.WriteString(`<pre class="md-pre">`)
		r.plainWithTokens(code)
		r.b.WriteString(`</pre>`)
		s = strings.TrimPrefix(s[start+3+end+3:], "\n")
	}
	r.lines(s)
}

// lines renders lines, grouping those that start with ">" into a quote.
func (r *mdRenderer) lines(s string) {
	if s == "" {
		return
	}
	lines := strings.Split(s, "\n")
	for i := 0; i < len(lines); {
		if strings.HasPrefix(lines[i], ">") {
			r.b.WriteString(`<blockquote class="md-quote">`)
			first := true
			for ; i < len(lines) && strings.HasPrefix(lines[i], ">"); i++ {
				if !first {
					r.b.WriteString("<br>")
				}
				first = false
				r.inline(strings.TrimPrefix(strings.TrimPrefix(lines[i], ">"), " "))
			}
			r.b.WriteString(`</blockquote>`)
			continue
		}
		if i > 0 && !strings.HasPrefix(lines[i-1], ">") {
			r.b.WriteString("<br>")
		}
		r.inline(lines[i])
		i++
	}
}

// inlineCode matches `code` within one line.
var inlineCode = regexp.MustCompile("`([^`]+)`")

// inline renders one line: code spans become tokens (no formatting inside
// them, but emphasis may surround them), then emphasis over the rest.
func (r *mdRenderer) inline(line string) {
	line = inlineCode.ReplaceAllStringFunc(line, func(m string) string {
		if len(r.toks) > maxTokens {
			return m
		}
		code := decodeEntitiesExceptTokens(m[1:len(m)-1], r.toks)
		r.toks = append(r.toks, mdToken{`<code class="md-code">` + esc(code) + `</code>`, code})
		return string(placeholderFirst + rune(len(r.toks)-1))
	})
	r.emphasis(line)
}

var emphasisTags = map[byte][2]string{'*': {"<b>", "</b>"}, '_': {"<i>", "</i>"}, '~': {"<s>", "</s>"}}

// emphasis finds the first *, _ or ~ that opens a span Slack would format
// (at a word boundary, followed by a non-space, closed on the same line by
// the same marker after a non-space and before a boundary), renders it
// with its content formatted in turn, and goes on after it.
func (r *mdRenderer) emphasis(s string) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		tags, ok := emphasisTags[c]
		if !ok || !boundaryBefore(s, i) || i+1 >= len(s) || s[i+1] == c || s[i+1] == ' ' || s[i+1] == '\t' {
			continue
		}
		for j := i + 2; j < len(s); j++ {
			if s[j] != c || s[j-1] == ' ' || s[j-1] == '\t' || !boundaryAfter(s, j) {
				continue
			}
			r.text(s[:i])
			r.b.WriteString(tags[0])
			r.emphasis(s[i+1 : j])
			r.b.WriteString(tags[1])
			r.emphasis(s[j+1:])
			return
		}
	}
	r.text(s)
}

// boundaryBefore: the marker at i starts the text or follows a space or
// punctuation (so snake_case_words stay as they are).
func boundaryBefore(s string, i int) bool {
	if i == 0 {
		return true
	}
	r, _ := utf8.DecodeLastRuneInString(s[:i])
	return isBoundary(r)
}

// boundaryAfter: the marker at j ends the text or precedes a space or
// punctuation.
func boundaryAfter(s string, j int) bool {
	if j+1 >= len(s) {
		return true
	}
	r, _ := utf8.DecodeRuneInString(s[j+1:])
	return isBoundary(r)
}

func isBoundary(r rune) bool {
	return unicode.IsSpace(r) || unicode.IsPunct(r) || unicode.IsSymbol(r) || isPlaceholder(r)
}

// text writes formatted text: entities decoded, emoji drawn, control
// sequences expanded, everything else escaped.
func (r *mdRenderer) text(s string) {
	for s != "" {
		i := strings.IndexFunc(s, isPlaceholder)
		if i < 0 {
			r.emojiText(decodeEntities(s))
			return
		}
		r.emojiText(decodeEntities(s[:i]))
		p, size := utf8.DecodeRuneInString(s[i:])
		r.b.WriteString(r.toks[p-placeholderFirst].html)
		s = s[i+size:]
	}
}

// plainWithTokens writes preformatted text: entities decoded, no
// formatting or emoji, control sequences as their plain text.
func (r *mdRenderer) plainWithTokens(s string) {
	r.b.WriteString(esc(decodeEntitiesExceptTokens(s, r.toks)))
}

// decodeEntitiesExceptTokens decodes the entities of s and puts each
// token's plain text in place of its placeholder.
func decodeEntitiesExceptTokens(s string, toks []mdToken) string {
	var out strings.Builder
	for s != "" {
		i := strings.IndexFunc(s, isPlaceholder)
		if i < 0 {
			out.WriteString(decodeEntities(s))
			break
		}
		out.WriteString(decodeEntities(s[:i]))
		p, size := utf8.DecodeRuneInString(s[i:])
		out.WriteString(toks[p-placeholderFirst].text)
		s = s[i+size:]
	}
	return out.String()
}

// emojiText writes plain text with known :shortcodes: drawn as emoji.
func (r *mdRenderer) emojiText(s string) {
	last := 0
	for _, m := range emojiShortcode.FindAllStringSubmatchIndex(s, -1) {
		e, ok := emojiChar(s[m[2]:m[3]])
		if !ok {
			continue
		}
		r.b.WriteString(esc(s[last:m[0]]))
		r.b.WriteString(emojiHTML(s[m[2]:m[3]], e))
		last = m[1]
	}
	r.b.WriteString(esc(s[last:]))
}

func emojiHTML(name, char string) string {
	return `<span class="emoji" role="img" aria-label="` + esc(name) + `" title=":` + esc(name) + `:">` + esc(char) + `</span>`
}

// controlSequence renders the inside of <...>; false when Slack would not
// treat it as one (it is then shown as typed).
func (n names) controlSequence(inner string) (mdToken, bool) {
	target, label, _ := strings.Cut(inner, "|")
	label = decodeEntities(label)
	switch {
	case strings.HasPrefix(target, "@") && validID(target[1:], "UWB"):
		return n.mention(target[1:], label), true
	case strings.HasPrefix(target, "#") && validID(target[1:], "CGD"):
		name := n.channelLabel(target[1:], label)
		return mdToken{`<span class="mention channel">` + esc(name) + `</span>`, name}, true
	case target == "!here" || target == "!channel" || target == "!everyone":
		t := "@" + target[1:]
		return mdToken{`<span class="mention broadcast">` + esc(t) + `</span>`, t}, true
	case strings.HasPrefix(target, "!subteam^"):
		t := cmp.Or(label, "@group")
		return mdToken{`<span class="mention">` + esc(t) + `</span>`, t}, true
	case strings.HasPrefix(target, "!date^"):
		return dateToken(target, label)
	}
	if href, ok := safeHref(decodeEntities(target)); ok {
		shown := label
		if shown == "" {
			shown = strings.TrimPrefix(decodeEntities(target), "mailto:")
		}
		return mdToken{`<a href="` + esc(href) + `" target="_blank" rel="noopener noreferrer">` + esc(replaceEmoji(shown)) + `</a>`, shown}, true
	}
	return mdToken{}, false
}

func (n names) mention(id, label string) mdToken {
	name := id
	if n.user != nil {
		name = n.user(id)
	}
	if name == id && label != "" {
		name = strings.TrimPrefix(label, "@")
	}
	class := "mention"
	if id == n.viewer {
		class += " me"
	}
	t := "@" + name
	return mdToken{`<span class="` + class + `" data-user="` + esc(id) + `">` + esc(t) + `</span>`, t}
}

func (n names) channelLabel(id, label string) string {
	name := strings.ToLower(id)
	if n.channel != nil {
		name = n.channel(id)
	}
	if name == strings.ToLower(id) && label != "" {
		name = label
	}
	return "#" + name
}

// dateToken renders <!date^unix^format[^link]|fallback> as a <time> the
// page's script formats in the reader's time zone; the fallback shows
// until then (and without script).
func dateToken(target, fallback string) (mdToken, bool) {
	parts := strings.Split(target, "^")
	if len(parts) < 3 {
		return mdToken{}, false
	}
	sec, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil {
		return mdToken{}, false
	}
	return timeToken(sec, decodeEntities(parts[2]), fallback), true
}

func timeToken(sec int64, format, fallback string) mdToken {
	t := time.Unix(sec, 0).UTC()
	if fallback == "" {
		fallback = t.Format("2006-01-02 15:04 UTC")
	}
	return mdToken{`<time class="slack-date" datetime="` + t.Format(time.RFC3339) + `" data-unix="` + strconv.FormatInt(sec, 10) +
		`" data-format="` + esc(format) + `">` + esc(fallback) + `</time>`, fallback}
}

// safeHref allows the link schemes a Slack client opens; anything else
// (javascript:, data:, vbscript: …) is not a link.
func safeHref(raw string) (string, bool) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return "", false
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "https":
		if u.Host == "" {
			return "", false
		}
		return u.String(), true
	case "mailto", "tel":
		return u.String(), true
	}
	return "", false
}
