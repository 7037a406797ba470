package slackstandin

import (
	"cmp"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Message is a message as it currently stands (edits applied).
type Message struct {
	Channel string `json:"channel"`
	// TS is the message's Slack timestamp ("1700000000.000100").
	TS string `json:"ts"`
	// ThreadTS is the parent's ts for a thread reply, "" otherwise.
	ThreadTS string `json:"thread_ts,omitempty"`
	// User is the author (BotUserID for the app's own messages).
	User string `json:"user"`
	// Username is the custom username the app posted with, if any.
	Username    string          `json:"username,omitempty"`
	Text        string          `json:"text"`
	Blocks      json.RawMessage `json:"blocks,omitempty"`
	Attachments json.RawMessage `json:"attachments,omitempty"`
	Metadata    json.RawMessage `json:"metadata,omitempty"`
	Edited      bool            `json:"edited,omitempty"`
	EditedTS    string          `json:"edited_ts,omitempty"`
	// Ephemeral messages are seen by Recipient only.
	Ephemeral bool   `json:"ephemeral,omitempty"`
	Recipient string `json:"recipient,omitempty"`
	// Via says how the message arrived: an API method name,
	// MethodResponseURL, or "command_response" (the immediate answer to a
	// slash command).
	Via string `json:"via"`
}

func (m Message) clone() Message {
	m.Blocks = slices.Clone(m.Blocks)
	m.Attachments = slices.Clone(m.Attachments)
	m.Metadata = slices.Clone(m.Metadata)
	return m
}

// View is a modal opened (views.open / views.push) by the app, as it
// currently stands.
type View struct {
	ID        string `json:"id"`
	TriggerID string `json:"trigger_id"`
	// User is whom the modal was opened for, known when the trigger_id was
	// issued by the stand-in (simulated commands and interactions, or
	// NewTriggerID); "" otherwise.
	User string `json:"user"`
	// Method is how the view was opened: "views.open", "views.push", or
	// "response_action" (pushed by a view_submission answer).
	Method          string          `json:"method"`
	Type            string          `json:"type"`
	Title           string          `json:"title"`
	CallbackID      string          `json:"callback_id"`
	ExternalID      string          `json:"external_id,omitempty"`
	PrivateMetadata string          `json:"private_metadata,omitempty"`
	Hash            string          `json:"hash"`
	RootViewID      string          `json:"root_view_id"`
	PreviousViewID  string          `json:"previous_view_id,omitempty"`
	Blocks          json.RawMessage `json:"blocks,omitempty"`
	// JSON is the view object as last sent by the app.
	JSON json.RawMessage `json:"json,omitempty"`
	// Errors are the inline field errors from the last view_submission
	// answered with response_action "errors" (block_id -> message).
	Errors map[string]string `json:"errors,omitempty"`
	// Closed is set once a submission closed the view.
	Closed    bool      `json:"closed"`
	OpenedAt  time.Time `json:"opened_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

func (v View) clone() View {
	v.Blocks = slices.Clone(v.Blocks)
	v.JSON = slices.Clone(v.JSON)
	v.Errors = maps.Clone(v.Errors)
	return v
}

type channelState struct {
	id   string
	msgs []*Message // ts order
}

type trigger struct {
	user    string
	channel string
	issued  time.Time
	used    bool
}

// state is the workspace. Every access holds Server.mu.
type state struct {
	lastMicros int64
	seq        int64
	channels   map[string]*channelState
	order      []string
	ephemerals []*Message
	views      []*viewRecord
	dmUsers    map[string]string // D-channel id -> user id
	triggers   map[string]*trigger
	responses  map[string]*responseTarget
	convs      map[string]*convState // registered conversations
	disabled   map[string]bool       // deactivated users

	// The web page's directory and what users did (directory.go,
	// activity.go): none of it is visible through the Web API.
	userNames     map[string]string // learned or added display names
	channelNames  map[string]string // channels added on the page
	addedUsers    []string
	addedChannels []string
	activity      []*activity
}

func newState(convs []Conversation) state {
	s := state{}
	s.reset(convs)
	return s
}

// reset forgets everything; the registry starts over from convs (invalid
// entries are skipped: New warns about them).
func (st *state) reset(convs []Conversation) {
	st.channels = map[string]*channelState{}
	st.order = nil
	st.ephemerals = nil
	st.views = nil
	st.dmUsers = map[string]string{}
	st.triggers = map[string]*trigger{}
	st.responses = map[string]*responseTarget{}
	st.convs = map[string]*convState{}
	st.disabled = map[string]bool{}
	st.userNames = map[string]string{}
	st.channelNames = map[string]string{}
	st.addedUsers, st.addedChannels, st.activity = nil, nil, nil
	for _, c := range convs {
		if registrable(c.ID) {
			st.convs[c.ID] = &convState{c: normalized(c)}
		}
	}
}

// nextTS returns a strictly increasing Slack timestamp based on the clock.
func (st *state) nextTS(now time.Time) string {
	m := now.UnixMicro()
	if m <= st.lastMicros {
		m = st.lastMicros + 1
	}
	st.lastMicros = m
	return formatTS(m)
}

func formatTS(micros int64) string {
	frac := strconv.FormatInt(micros%1_000_000, 10)
	return strconv.FormatInt(micros/1_000_000, 10) + "." + strings.Repeat("0", 6-len(frac)) + frac
}

// tsTime parses a Slack timestamp; the zero time when malformed.
func tsTime(ts string) time.Time {
	sec, frac, _ := strings.Cut(ts, ".")
	s, err := strconv.ParseInt(sec, 10, 64)
	if err != nil {
		return time.Time{}
	}
	us, _ := strconv.ParseInt((frac + "000000")[:6], 10, 64)
	return time.Unix(s, us*1000)
}

func (st *state) nextSeq() int64 {
	st.seq++
	return st.seq
}

func (st *state) channel(id string) *channelState {
	c, ok := st.channels[id]
	if !ok {
		c = &channelState{id: id}
		st.channels[id] = c
		st.order = append(st.order, id)
	}
	return c
}

func (st *state) find(channel, ts string) *Message {
	c, ok := st.channels[channel]
	if !ok {
		return nil
	}
	for _, m := range c.msgs {
		if m.TS == ts {
			return m
		}
	}
	return nil
}

func (st *state) remove(channel, ts string) bool {
	c, ok := st.channels[channel]
	if !ok {
		return false
	}
	n := len(c.msgs)
	c.msgs = slices.DeleteFunc(c.msgs, func(m *Message) bool { return m.TS == ts })
	return len(c.msgs) != n
}

func (st *state) findEphemeral(channel, ts string) *Message {
	for _, m := range st.ephemerals {
		if m.Channel == channel && m.TS == ts {
			return m
		}
	}
	return nil
}

func (st *state) view(id, externalID string) *viewRecord {
	for _, v := range st.views {
		if (id != "" && v.ID == id) || (id == "" && externalID != "" && v.ExternalID == externalID) {
			return v
		}
	}
	return nil
}

// dmChannel is the stable DM channel id for a user.
func dmChannel(user string) string { return "D" + user }

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return hex.EncodeToString(b)
}

// Messages returns the messages of channel (top-level and thread replies, in
// ts order) as they currently stand. Ephemeral messages are not included; see
// Ephemerals.
func (s *Server) Messages(channel string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.st.channels[channel]
	if !ok {
		return nil
	}
	out := make([]Message, 0, len(c.msgs))
	for _, m := range c.msgs {
		out = append(out, m.clone())
	}
	return out
}

// Thread returns the replies to the message ts in channel, in ts order.
func (s *Server) Thread(channel, ts string) []Message {
	var out []Message
	for _, m := range s.Messages(channel) {
		if m.ThreadTS == ts && m.TS != ts {
			out = append(out, m)
		}
	}
	return out
}

// Channels returns the ids of channels that have been posted to or opened,
// in order of first use.
func (s *Server) Channels() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.st.order)
}

// Ephemerals returns the ephemeral messages shown to user (every user when
// user is ""), in arrival order.
func (s *Server) Ephemerals(user string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Message
	for _, m := range s.st.ephemerals {
		if user == "" || m.Recipient == user {
			out = append(out, m.clone())
		}
	}
	return out
}

// Views returns the views opened for user (every view when user is ""), in
// the order they were opened.
func (s *Server) Views(user string) []View {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []View
	for _, v := range s.st.views {
		if user == "" || v.User == user {
			out = append(out, v.View.clone())
		}
	}
	return out
}

// DMChannel returns the id conversations.open answers for user: "D"+user.
func (s *Server) DMChannel(user string) string { return dmChannel(user) }

// NewTriggerID issues a trigger_id for user, valid for Options.AckTimeout
// and usable once with views.open, as Slack's are. Tests that post to the
// ingress directly use it to build realistic payloads.
func (s *Server) NewTriggerID(user string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.newTriggerLocked(user, "", time.Now())
}

func (s *Server) newTriggerLocked(user, channel string, now time.Time) string {
	id := strconv.FormatInt(s.st.nextSeq(), 10) + "." + strconv.FormatInt(now.UnixNano()%1_000_000_000, 10) + "." + randomHex(16)
	s.st.triggers[id] = &trigger{user: user, channel: channel, issued: now}
	return id
}

// displayName is the configured display name of user, else the one the
// stand-in learned (directory.go), else its id. s.mu must be held.
func (s *Server) displayName(user string) string {
	if user == BotUserID {
		return BotName
	}
	if n, ok := s.opts.Users[user]; ok && n != "" {
		return n
	}
	if n, ok := s.st.userNames[user]; ok && n != "" {
		return n
	}
	return user
}

// channelName is the registered or configured name of a channel, or its
// lower-cased id. s.mu must be held.
func (s *Server) channelName(id string) string {
	if cs, ok := s.st.convs[id]; ok && cs.c.Name != "" {
		return cs.c.Name
	}
	if n, ok := s.opts.Channels[id]; ok && n != "" {
		return n
	}
	if n, ok := s.st.channelNames[id]; ok && n != "" {
		return n
	}
	return strings.ToLower(id)
}

// sortedMessages returns msgs ordered by ts.
func sortedMessages(msgs []*Message) []*Message {
	out := slices.Clone(msgs)
	slices.SortStableFunc(out, func(a, b *Message) int { return cmp.Compare(a.TS, b.TS) })
	return out
}

func itoa(n int) string { return strconv.Itoa(n) }

// DeactivateUser deactivates user, as a workspace admin would: Slack then
// refuses to open a conversation with them (conversations.open answers
// user_disabled). Reset forgets it.
func (s *Server) DeactivateUser(user string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.disabled[user] = true
	s.notifyLocked()
}
