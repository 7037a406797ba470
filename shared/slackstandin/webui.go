package slackstandin

import (
	"bytes"
	"cmp"
	"encoding/json"
	"html/template"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// What one person sees in the web page: GET /_standin/ui?as=U…&channel=C…
// answers the whole screen as JSON with server-drawn HTML fragments, so the
// page's script only swaps them in. as="" is the watch mode: every
// conversation, every ephemeral and every open modal, and nothing to click.

// uiState is the answer of GET /_standin/ui.
type uiState struct {
	Version       uint64     `json:"version"`
	As            string     `json:"as"`
	AsName        string     `json:"as_name"`
	Team          string     `json:"team"`
	APIURL        string     `json:"api_url"`
	Users         []User     `json:"users"`
	Conversations []convView `json:"conversations"`
	Channel       convView   `json:"channel"`
	ChannelHTML   string     `json:"channel_html"`
	Modal         *uiModal   `json:"modal"`
	ModalsHTML    string     `json:"modals_html,omitempty"`
	CallsHTML     string     `json:"calls_html"`
}

// convView is a conversation in the sidebar; Count is how many items the
// viewer sees in it (the page's unread badges compare counts).
type convView struct {
	ID    string `json:"id"`
	Label string `json:"label"`
	Kind  string `json:"kind"` // channel, dm, group
	Count int    `json:"count"`
}

// uiModal is the viewer's open modal: the page redraws the form only when
// its id or hash changes (so typing is never lost), and the errors alone
// otherwise.
type uiModal struct {
	ID     string            `json:"id"`
	Hash   string            `json:"hash"`
	HTML   string            `json:"html"`
	Errors map[string]string `json:"errors"`
}

// itemView is a message or a user's own action in a conversation.
type itemView struct {
	TS, Channel string
	ISO, Clock  string
	Unix        int64
	Author      string
	Initial     string
	Bot         bool
	Edited      bool
	Ephemeral   bool
	VisibleTo   string
	Body        template.HTML
	Replies     []*itemView
	Activity    *activityView

	at       int64 // microseconds, for ordering
	threadTS string
}

type activityView struct{ Kind, Who, Verb, Text, Note string }

type modalView struct {
	ID, Hash, Title, App, Close, Submit string
	Body                                template.HTML
}

type watchedModal struct {
	Title, Who string
	Closed     bool
	Body       template.HTML
}

type callView struct {
	ISO, Clock, Method, Error string
	Unix                      int64
	Status                    int
}

// maxShownItems bounds a conversation drawn at once; older items are left
// out (a long make run session stays quick to redraw).
const maxShownItems = 300

// ui builds the screen for viewer as in channel ch.
func (s *Server) ui(as, ch string) (uiState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if as != "" && !s.knownUserLocked(as) {
		as = "" // an unknown viewer watches
	}
	st := uiState{Version: s.version, As: as, Team: DefaultTeamName, APIURL: s.URL() + "/api/", Users: s.usersLocked()}
	if as != "" {
		st.AsName = s.displayName(as)
	}
	n := names{user: s.displayName, channel: s.channelName, viewer: as}

	st.Conversations = s.conversationsLocked(as)
	st.Channel = st.Conversations[0]
	for _, c := range st.Conversations {
		if c.ID == ch {
			st.Channel = c
		}
	}
	items, err := s.itemsLocked(st.Channel.ID, as, n)
	if err != nil {
		return st, err
	}
	var buf bytes.Buffer
	if err := webTemplates.ExecuteTemplate(&buf, "conversation", items); err != nil {
		return st, err
	}
	st.ChannelHTML = buf.String()

	if as != "" {
		if st.Modal, err = s.modalLocked(as, n); err != nil {
			return st, err
		}
	} else if st.ModalsHTML, err = s.watchedModalsLocked(n); err != nil {
		return st, err
	}
	if st.CallsHTML, err = s.callsHTMLLocked(); err != nil {
		return st, err
	}
	return st, nil
}

// conversationsLocked lists what as sees in the sidebar: public channels
// (and private ones they are in), then their DM with the app; in watch
// mode every DM too. The first is the default.
func (s *Server) conversationsLocked(as string) []convView {
	var out []convView
	for _, id := range s.publicChannelsLocked() {
		cs, registered := s.st.convs[id]
		if registered && cs.c.Private && as != "" && !s.isMemberLocked(id, as) {
			continue
		}
		out = append(out, convView{ID: id, Label: "#" + s.channelName(id), Kind: "channel"})
	}
	if as != "" {
		dm := dmChannel(as)
		out = append(out, convView{ID: dm, Label: BotName, Kind: "dm"})
	} else {
		for _, id := range s.st.order {
			switch {
			case isDM(id):
				out = append(out, convView{ID: id, Label: BotName + " ↔ @" + s.displayName(s.st.dmUsers[id]), Kind: "dm"})
			case strings.HasPrefix(id, "G"):
				out = append(out, convView{ID: id, Label: "group DM " + id, Kind: "group"})
			}
		}
	}
	for i := range out {
		out[i].Count = s.countLocked(out[i].ID, as)
	}
	return out
}

// countLocked counts what as sees in ch.
func (s *Server) countLocked(ch, as string) int {
	n := 0
	if c, ok := s.st.channels[ch]; ok {
		n = len(c.msgs)
	}
	for _, e := range s.st.ephemerals {
		if e.Channel == ch && (as == "" || e.Recipient == as) {
			n++
		}
	}
	for _, a := range s.st.activity {
		if a.Channel == ch && (as == "" || a.User == as || a.Shared) {
			n++
		}
	}
	return n
}

// itemsLocked is the conversation: messages, the ephemerals and own
// actions the viewer may see, in time order, replies under their parent.
func (s *Server) itemsLocked(ch, as string, n names) ([]*itemView, error) {
	var all []*itemView
	add := func(m *Message) error {
		v, err := s.messageItemLocked(m, as, n)
		if err == nil {
			all = append(all, v)
		}
		return err
	}
	if c, ok := s.st.channels[ch]; ok {
		for _, m := range c.msgs {
			if err := add(m); err != nil {
				return nil, err
			}
		}
	}
	for _, e := range s.st.ephemerals {
		if e.Channel == ch && (as == "" || e.Recipient == as) {
			if err := add(e); err != nil {
				return nil, err
			}
		}
	}
	for _, a := range s.st.activity {
		if a.Channel == ch && (as == "" || a.User == as || a.Shared) {
			all = append(all, s.activityItemLocked(a, as))
		}
	}
	// Stable: an action and the app's answer in the same microsecond keep
	// their recorded order (actions are recorded first).
	slices.SortStableFunc(all, func(a, b *itemView) int { return cmp.Compare(a.at, b.at) })

	parents := map[string]*itemView{}
	var top []*itemView
	for _, it := range all {
		if p, ok := parents[it.threadTS]; ok && it.threadTS != "" && it.threadTS != it.TS {
			p.Replies = append(p.Replies, it)
			continue
		}
		if it.Activity == nil && !it.Ephemeral {
			parents[it.TS] = it
		}
		top = append(top, it)
	}
	if len(top) > maxShownItems {
		top = top[len(top)-maxShownItems:]
	}
	return top, nil
}

func (s *Server) messageItemLocked(m *Message, as string, n names) (*itemView, error) {
	at, _ := tsMicros(m.TS)
	t := time.UnixMicro(at).UTC()
	author := cmp.Or(m.Username, s.displayName(m.User))
	v := &itemView{
		TS: m.TS, Channel: m.Channel, ISO: t.Format(time.RFC3339), Clock: t.Format("15:04:05 UTC"), Unix: t.Unix(),
		Author: author, Initial: initial(author), Bot: m.User == BotUserID, Edited: m.Edited, Ephemeral: m.Ephemeral,
		at: at, threadTS: m.ThreadTS,
	}
	if m.Ephemeral {
		v.VisibleTo = "Only visible to you"
		if as == "" {
			v.VisibleTo = "Only visible to @" + s.displayName(m.Recipient)
		}
	}
	// A person acts on what they see: their channels, their DM, their
	// ephemerals; the watch mode only looks.
	r := blockRenderer{names: n, interactive: as != "" && (!m.Ephemeral || m.Recipient == as)}
	body, err := r.render(m.Blocks)
	if err != nil {
		return nil, err
	}
	if body == "" {
		body = renderMrkdwn(m.Text, n)
	}
	if len(m.Attachments) > 0 {
		body += renderAttachments(m.Attachments, n)
	}
	v.Body = body
	return v, nil
}

func (s *Server) activityItemLocked(a *activity, as string) *itemView {
	t := a.At.UTC()
	v := &itemView{
		TS: formatTS(a.At.UnixMicro()), Channel: a.Channel, ISO: t.Format(time.RFC3339), Clock: t.Format("15:04:05 UTC"),
		Unix: t.Unix(), at: a.At.UnixMicro(), threadTS: a.ThreadTS,
		VisibleTo: "only visible to you",
	}
	if a.Shared { // the user's own message, as Slack shows a shared command
		name := s.displayName(a.User)
		v.Author, v.Initial, v.Body = name, initial(name), template.HTML(`<span class="typed-command">`+esc(a.Text)+`</span>`)
		v.VisibleTo = ""
		return v
	}
	who := "You"
	if as == "" {
		who = "@" + s.displayName(a.User)
		v.VisibleTo = "only @" + s.displayName(a.User) + " sees this"
	}
	av := &activityView{Kind: string(a.Kind), Who: who, Text: a.Text}
	switch a.Kind {
	case activityCommand:
		av.Verb, av.Note = "typed", "Slack sends the command to the app and posts nothing"
	case activityClick:
		av.Verb, av.Note = "clicked", "Slack sends the click to the app and posts nothing"
	}
	v.Activity = av
	return v
}

// renderAttachments draws legacy attachments' text (CoffeeBuddy sends
// none; an app under test might).
func renderAttachments(raw json.RawMessage, n names) template.HTML {
	var atts []struct {
		Pretext, Title, Text, Fallback string
	}
	if json.Unmarshal(raw, &atts) != nil {
		return ""
	}
	var b strings.Builder
	for _, a := range atts {
		b.WriteString(`<div class="attachment">`)
		for _, t := range []string{a.Pretext, a.Title, cmp.Or(a.Text, a.Fallback)} {
			if t != "" {
				b.WriteString(`<div class="mrkdwn">` + string(renderMrkdwn(t, n)) + `</div>`)
			}
		}
		b.WriteString(`</div>`)
	}
	return template.HTML(b.String())
}

func initial(name string) string {
	name = strings.TrimLeft(name, "@#")
	r, _ := utf8.DecodeRuneInString(name)
	if r == utf8.RuneError {
		return "?"
	}
	return strings.ToUpper(string(r))
}

// modalLocked draws as's open modal, if any.
func (s *Server) modalLocked(as string, n names) (*uiModal, error) {
	v := s.topView(as)
	if v == nil {
		return nil, nil
	}
	r := blockRenderer{names: n, interactive: true, errors: v.Errors, formID: "f-" + v.ID}
	body, err := r.render(v.Blocks)
	if err != nil {
		return nil, err
	}
	mv := modalView{
		ID: v.ID, Hash: v.Hash, Title: v.Title, App: BotName, Body: body,
		Close: cmp.Or(plainTextOf(v.req.Close), "Cancel"), Submit: plainTextOf(v.req.Submit),
	}
	var buf bytes.Buffer
	if err := webTemplates.ExecuteTemplate(&buf, "modal", mv); err != nil {
		return nil, err
	}
	return &uiModal{ID: v.ID, Hash: v.Hash, HTML: buf.String(), Errors: v.Errors}, nil
}

// watchedModalsLocked draws the open modals (and the last few closed),
// newest first, for the watch mode.
func (s *Server) watchedModalsLocked(n names) (string, error) {
	var views []watchedModal
	closed := 0
	for _, v := range slices.Backward(s.st.views) {
		if v.Closed {
			if closed++; closed > 3 {
				continue
			}
		}
		r := blockRenderer{names: n, errors: v.Errors, formID: "w-" + v.ID}
		body, err := r.render(v.Blocks)
		if err != nil {
			return "", err
		}
		who := "@" + s.displayName(v.User)
		if v.User == "" {
			who = "an unknown user"
		}
		views = append(views, watchedModal{Title: v.Title, Who: who, Closed: v.Closed, Body: body})
	}
	var buf bytes.Buffer
	err := webTemplates.ExecuteTemplate(&buf, "watched-modals", views)
	return buf.String(), err
}

func (s *Server) callsHTMLLocked() (string, error) {
	calls := s.calls
	if len(calls) > 25 {
		calls = calls[len(calls)-25:]
	}
	var views []callView
	for _, c := range slices.Backward(calls) {
		var r struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(c.Response, &r)
		t := c.At.UTC()
		views = append(views, callView{ISO: t.Format(time.RFC3339), Clock: t.Format("15:04:05"), Unix: t.Unix(),
			Method: c.Method, Status: c.Status, Error: r.Error})
	}
	var buf bytes.Buffer
	err := webTemplates.ExecuteTemplate(&buf, "calls", views)
	return buf.String(), err
}

// plainTextOf is a text object's text (a modal's title, close, submit).
func plainTextOf(raw json.RawMessage) string {
	var t bkText
	if json.Unmarshal(raw, &t) != nil {
		return ""
	}
	return t.Text
}
