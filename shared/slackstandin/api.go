package slackstandin

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"io"
	"maps"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/slack-go/slack"
)

// maxBody bounds request bodies, well above Slack's own limits.
const maxBody = 4 << 20

// apiResult is what a method handler produces: the JSON answer and the
// transcript lines to write once the state lock is released.
type apiResult struct {
	resp  any
	lines []string
}

// slackResponse is the envelope of every answer, field for field
// slack.SlackResponse, but with empty fields omitted as Slack omits them:
// {"ok":true,...} or {"ok":false,"error":"invalid_auth"}.
type slackResponse struct {
	Ok               bool              `json:"ok"`
	Error            string            `json:"error,omitempty"`
	ResponseMetadata *responseMetadata `json:"response_metadata,omitempty"`
}

// responseMetadata is slack.ResponseMetadata with empty fields omitted:
// Slack sends {"messages":[...]} with an error and {"warnings":[...]} with a
// warning, not every field of the object.
type responseMetadata struct {
	Cursor   string   `json:"next_cursor,omitempty"`
	Messages []string `json:"messages,omitempty"`
	Warnings []string `json:"warnings,omitempty"`
}

func slackError(code string, messages ...string) apiResult {
	return apiResult{resp: errorResponse(code, messages)}
}

func errorResponse(code string, messages []string) slackResponse {
	r := slackResponse{Ok: false, Error: code}
	if len(messages) > 0 {
		r.ResponseMetadata = &responseMetadata{Messages: messages}
	}
	return r
}

var okResponse = slackResponse{Ok: true}

type methodFunc func(s *Server, p params, now time.Time) apiResult

// lookupMethod is the Web API surface. Handlers run with s.mu held.
func lookupMethod(name string) (methodFunc, bool) {
	switch name {
	case "auth.test":
		return (*Server).authTest, true
	case "chat.postMessage":
		return (*Server).chatPostMessage, true
	case "chat.update":
		return (*Server).chatUpdate, true
	case "chat.postEphemeral":
		return (*Server).chatPostEphemeral, true
	case "conversations.open":
		return (*Server).conversationsOpen, true
	case "conversations.info":
		return (*Server).conversationsInfo, true
	case "conversations.join":
		return (*Server).conversationsJoin, true
	case "conversations.history":
		return (*Server).conversationsHistory, true
	case "conversations.replies":
		return (*Server).conversationsReplies, true
	case "views.open":
		return (*Server).viewsOpen, true
	case "views.update":
		return (*Server).viewsUpdate, true
	case "views.push":
		return (*Server).viewsPush, true
	case "users.info":
		return (*Server).usersInfo, true
	}
	return nil, false
}

// Methods lists the Web API methods the stand-in implements.
func Methods() []string {
	return []string{
		"auth.test", "chat.postEphemeral", "chat.postMessage", "chat.update",
		"conversations.history", "conversations.info", "conversations.join", "conversations.open", "conversations.replies", "users.info",
		"views.open", "views.push", "views.update",
	}
}

func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	method := r.PathValue("method")
	now := time.Now()
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		http.Error(w, "reading body: "+err.Error(), http.StatusBadRequest)
		return
	}
	if len(body) > maxBody {
		http.Error(w, "request too large", http.StatusRequestEntityTooLarge)
		return
	}
	p, perr := parseParams(r, body)
	call := Call{Method: method, Params: maps.Clone(p.str), Body: body, At: now}

	if f := s.fault(method); f != nil {
		if status, retryAfter, ok := f(call); ok {
			s.answerFault(w, call, status, retryAfter)
			return
		}
	}

	var res apiResult
	s.mu.Lock()
	switch fn, known := lookupMethod(method); {
	case perr != nil && p.isJSON:
		res = slackError("invalid_json")
	case perr != nil:
		res = slackError("invalid_form_data")
	case !known:
		res = slackError("unknown_method")
	default:
		if code := s.checkAuth(r, p); code != "" {
			res = slackError(code)
		} else {
			res = fn(s, p, now)
		}
	}
	out, err := json.Marshal(res.resp)
	if err != nil { // cannot happen with the types used here
		out = []byte(`{"ok":false,"error":"internal_error"}`)
	}
	call.Status = http.StatusOK
	call.Response = out
	s.recordLocked(call)
	s.mu.Unlock()

	s.transcribe(res.lines)
	s.log.Debug("slack api call", "method", method, "status", call.Status, "error", slackErrorCode(res.resp))
	writeJSON(w, http.StatusOK, out)
}

func slackErrorCode(resp any) string {
	if r, ok := resp.(slackResponse); ok {
		return r.Error
	}
	return ""
}

// answerFault answers an injected fault and records it.
func (s *Server) answerFault(w http.ResponseWriter, call Call, status int, retryAfter time.Duration) {
	code := "fault_injected"
	switch {
	case status == http.StatusTooManyRequests:
		code = "ratelimited"
	case status >= 500:
		code = "internal_error"
	}
	out, _ := json.Marshal(slackResponse{Ok: false, Error: code})
	if status == http.StatusTooManyRequests || retryAfter > 0 {
		secs := int64(math.Ceil(retryAfter.Seconds()))
		w.Header().Set("Retry-After", strconv.FormatInt(max(secs, 0), 10))
	}
	call.Status = status
	call.Response = out
	s.mu.Lock()
	s.recordLocked(call)
	s.mu.Unlock()
	s.log.Debug("slack api fault injected", "method", call.Method, "status", status, "retry_after", retryAfter)
	writeJSON(w, status, out)
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// checkAuth returns "" when the request carries the bot token, else Slack's
// error code. Like Slack, a JSON body must authenticate with the
// Authorization header; form bodies and query strings may use "token".
func (s *Server) checkAuth(r *http.Request, p params) string {
	var tok string
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, rest, _ := strings.Cut(strings.TrimSpace(h), " ")
		if !strings.EqualFold(scheme, "Bearer") {
			return "invalid_auth"
		}
		tok = strings.TrimSpace(rest)
	} else if !p.isJSON || r.URL.Query().Has("token") {
		tok = p.get("token")
	}
	if tok == "" {
		return "not_authed"
	}
	if subtle.ConstantTimeCompare([]byte(tok), []byte(s.opts.BotToken)) != 1 {
		return "invalid_auth"
	}
	return ""
}

// ---- wire types -----------------------------------------------------------

// wireMessage is slack.Msg with the structured fields kept verbatim (so
// blocks round-trip exactly) and Slack's omitted-when-false flags omitted.
type wireMessage struct {
	slack.Msg
	Blocks          json.RawMessage `json:"blocks,omitempty"`
	Attachments     json.RawMessage `json:"attachments,omitempty"`
	Metadata        json.RawMessage `json:"metadata,omitempty"`
	ReplyUsersCount int             `json:"reply_users_count,omitempty"` // thread parents in conversations.history/replies
	ReplaceOriginal bool            `json:"replace_original,omitempty"`
	DeleteOriginal  bool            `json:"delete_original,omitempty"`
}

func toWire(m *Message) *wireMessage {
	w := &wireMessage{Blocks: m.Blocks, Attachments: m.Attachments, Metadata: m.Metadata}
	w.Type = "message"
	w.User = m.User
	w.Text = m.Text
	w.Timestamp = m.TS
	w.ThreadTimestamp = m.ThreadTS
	w.Username = m.Username
	if m.User == BotUserID {
		w.BotID = BotID
		w.Team = DefaultTeamID
		w.BotProfile = &slack.BotProfile{ID: BotID, AppID: DefaultAppID, Name: BotName, TeamID: DefaultTeamID}
	}
	if m.Edited {
		w.Edited = &slack.Edited{User: m.User, Timestamp: m.EditedTS}
	}
	return w
}

type chatResponse struct {
	slackResponse
	Channel   string       `json:"channel,omitempty"`
	TS        string       `json:"ts,omitempty"`
	MessageTS string       `json:"message_ts,omitempty"`
	Text      string       `json:"text,omitempty"`
	Message   *wireMessage `json:"message,omitempty"`
}

// ---- auth / users / conversations ------------------------------------------

func (s *Server) authTest(params, time.Time) apiResult {
	return apiResult{resp: struct {
		slackResponse
		slack.AuthTestResponse
	}{
		slackResponse: okResponse,
		AuthTestResponse: slack.AuthTestResponse{
			URL:    s.URL() + "/",
			Team:   DefaultTeamName,
			User:   BotName,
			TeamID: DefaultTeamID,
			UserID: BotUserID,
			BotID:  BotID,
		},
	}}
}

func (s *Server) usersInfo(p params, _ time.Time) apiResult {
	id := p.get("user")
	if id == "" {
		return slackError("user_not_found")
	}
	name := s.displayName(id)
	u := slack.User{
		ID:       id,
		TeamID:   DefaultTeamID,
		Name:     name,
		RealName: name,
		TZ:       "UTC",
		TZLabel:  "Coordinated Universal Time",
		IsBot:    id == BotUserID,
		Profile: slack.UserProfile{
			RealName:              name,
			RealNameNormalized:    name,
			DisplayName:           name,
			DisplayNameNormalized: name,
			Team:                  DefaultTeamID,
		},
	}
	if u.IsBot {
		u.Profile.BotID = BotID
		u.Profile.ApiAppID = DefaultAppID
	}
	if p.bool("include_locale") {
		u.Locale = "en-US"
	}
	return apiResult{resp: struct {
		slackResponse
		User slack.User `json:"user"`
	}{okResponse, u}}
}

// resolveChannel maps a user id used as a channel (Slack allows posting to
// "U123") to the user's DM channel and remembers DM owners.
func (s *Server) resolveChannel(ch string) string {
	if ch == "" {
		return ""
	}
	switch ch[0] {
	case 'U', 'W':
		s.st.dmUsers[dmChannel(ch)] = ch
		return dmChannel(ch)
	case 'D':
		if _, ok := s.st.dmUsers[ch]; !ok && len(ch) > 2 && (ch[1] == 'U' || ch[1] == 'W') {
			s.st.dmUsers[ch] = ch[1:]
		}
	}
	return ch
}

func (s *Server) channelObject(id string, now time.Time) slack.Channel {
	var c slack.Channel
	c.ID = id
	c.Created = slack.JSONTime(now.Unix())
	c.IsOpen = true
	switch {
	case strings.HasPrefix(id, "D"):
		c.IsIM = true
		c.User = s.st.dmUsers[id]
	case strings.HasPrefix(id, "G"):
		c.IsMpIM = true
		c.IsPrivate = true
		c.IsGroup = true
		c.Name = "mpdm-" + strings.ToLower(id)
		c.NameNormalized = c.Name
	default:
		v := s.botViewLocked(id)
		c.IsChannel = true
		c.IsMember = v.botMember
		c.IsPrivate = v.private
		c.IsArchived = v.archived
		c.Name = s.channelName(id)
		c.NameNormalized = c.Name
		c.Creator = BotUserID
	}
	return c
}

func (s *Server) conversationsOpen(p params, now time.Time) apiResult {
	type openResponse struct {
		slackResponse
		NoOp        bool          `json:"no_op,omitempty"`
		AlreadyOpen bool          `json:"already_open,omitempty"`
		Channel     slack.Channel `json:"channel"`
	}
	if ch := p.get("channel"); ch != "" {
		ch = s.resolveChannel(ch)
		_, existed := s.st.channels[ch]
		s.st.channel(ch)
		return apiResult{resp: openResponse{okResponse, existed, existed, s.channelObject(ch, now)}}
	}
	var users []string
	for u := range strings.SplitSeq(p.get("users"), ",") {
		if u = strings.TrimSpace(u); u != "" && !slices.Contains(users, u) {
			users = append(users, u)
		}
	}
	switch {
	case len(users) == 0:
		return slackError("users_list_not_supplied")
	case len(users) > 8:
		return slackError("too_many_users")
	case slices.ContainsFunc(users, func(u string) bool { return s.st.disabled[u] }):
		return slackError("user_disabled")
	}
	var id string
	if len(users) == 1 {
		id = s.resolveChannel(users[0])
	} else {
		sorted := slices.Sorted(slices.Values(users))
		sum := sha256.Sum256([]byte(strings.Join(sorted, ",")))
		id = "G" + strings.ToUpper(hex.EncodeToString(sum[:5]))
	}
	_, existed := s.st.channels[id]
	s.st.channel(id)
	ch := s.channelObject(id, now)
	if len(users) > 1 {
		ch.Members = slices.Sorted(slices.Values(append(users, BotUserID)))
	}
	return apiResult{resp: openResponse{okResponse, existed, existed, ch}}
}

func (s *Server) conversationsInfo(p params, now time.Time) apiResult {
	id := p.get("channel")
	if id == "" {
		return slackError("channel_not_found")
	}
	id = s.resolveChannel(id)
	if !s.botViewLocked(id).visible {
		return slackError("channel_not_found")
	}
	ch := s.channelObject(id, now)
	if p.bool("include_num_members") {
		ch.NumMembers = s.numMembersLocked(id)
	}
	if p.bool("include_locale") {
		ch.Locale = "en-US"
	}
	return apiResult{resp: struct {
		slackResponse
		Channel slack.Channel `json:"channel"`
	}{okResponse, ch}}
}

// ---- chat ------------------------------------------------------------------

// content reads text/blocks/attachments/metadata; code is a Slack error.
type content struct {
	text                              string
	hasText                           bool
	blocks, attachments, metadata     json.RawMessage
	hasBlocks, hasAttach, hasMetadata bool
}

// readContent also checks the blocks against Block Kit's limits; messages
// are the response_metadata.messages that come with an invalid_blocks.
func readContent(p params) (c content, code string, messages []string) {
	c = content{text: p.get("text"), hasText: p.has("text")}
	var ok bool
	if p.has("blocks") && p.get("blocks") != "" {
		if c.blocks, ok = p.json("blocks"); !ok || c.blocks[0] != '[' {
			return c, "invalid_blocks", nil
		}
		c.hasBlocks = true
		if msgs := checkBlocks(c.blocks, messageSurface); len(msgs) > 0 {
			return c, "invalid_blocks", msgs
		}
	}
	if p.has("attachments") && p.get("attachments") != "" {
		if c.attachments, ok = p.json("attachments"); !ok || c.attachments[0] != '[' {
			return c, "invalid_attachments", nil
		}
		c.hasAttach = true
	}
	if p.has("metadata") && p.get("metadata") != "" {
		if c.metadata, ok = p.json("metadata"); !ok {
			return c, "invalid_metadata_format", nil
		}
		c.hasMetadata = true
	}
	if len(c.text) > maxMessageText {
		return c, "msg_too_long", nil
	}
	return c, "", nil
}

func (c content) empty() bool {
	return c.text == "" && isEmptyJSONArray(c.blocks) && isEmptyJSONArray(c.attachments)
}

func (s *Server) chatPostMessage(p params, now time.Time) apiResult {
	ch := s.resolveChannel(p.get("channel"))
	if ch == "" {
		return slackError("channel_not_found")
	}
	if code := s.botViewLocked(ch).postCode(); code != "" {
		return slackError(code)
	}
	c, code, msgs := readContent(p)
	if code != "" {
		return slackError(code, msgs...)
	}
	if c.empty() {
		return slackError("no_text")
	}
	threadTS := p.get("thread_ts")
	if threadTS != "" {
		if parent := s.st.find(ch, threadTS); parent != nil && parent.ThreadTS != "" {
			threadTS = parent.ThreadTS // replying to a reply lands in the same thread
		}
	}
	m := &Message{
		Channel:     ch,
		TS:          s.st.nextTS(now),
		ThreadTS:    threadTS,
		User:        BotUserID,
		Username:    p.get("username"),
		Text:        c.text,
		Blocks:      nonEmpty(c.blocks),
		Attachments: nonEmpty(c.attachments),
		Metadata:    c.metadata,
		Via:         "chat.postMessage",
	}
	st := s.st.channel(ch)
	st.msgs = append(st.msgs, m)
	return apiResult{
		resp:  chatResponse{slackResponse: okResponse, Channel: ch, TS: m.TS, Message: toWire(m)},
		lines: []string{s.messageLine(m, "")},
	}
}

func nonEmpty(raw json.RawMessage) json.RawMessage {
	if isEmptyJSONArray(raw) {
		return nil
	}
	return raw
}

func (s *Server) chatUpdate(p params, now time.Time) apiResult {
	ch := s.resolveChannel(p.get("channel"))
	if ch == "" {
		return slackError("channel_not_found")
	}
	if code := s.botViewLocked(ch).updateCode(); code != "" {
		return slackError(code)
	}
	ts := p.get("ts")
	if ts == "" {
		return slackError("message_not_found")
	}
	c, code, msgs := readContent(p)
	if code != "" {
		return slackError(code, msgs...)
	}
	if !c.hasText && !c.hasBlocks && !c.hasAttach {
		return slackError("no_text")
	}
	m := s.st.find(ch, ts)
	if m == nil {
		return slackError("message_not_found")
	}
	if m.User != BotUserID {
		return slackError("cant_update_message")
	}
	applyEdit(m, c)
	m.Edited, m.EditedTS = true, s.st.nextTS(now)
	if m.empty() {
		return slackError("no_text")
	}
	return apiResult{
		resp:  chatResponse{slackResponse: okResponse, Channel: ch, TS: m.TS, Text: m.Text, Message: toWire(m)},
		lines: []string{s.messageLine(m, "edited")},
	}
}

// applyEdit applies chat.update semantics: fields present replace, absent
// fields are retained, an empty blocks array removes the blocks.
func applyEdit(m *Message, c content) {
	if c.hasText {
		m.Text = c.text
	}
	if c.hasBlocks {
		m.Blocks = nonEmpty(c.blocks)
	}
	if c.hasAttach {
		m.Attachments = nonEmpty(c.attachments)
	}
	if c.hasMetadata {
		m.Metadata = c.metadata
	}
}

func (m *Message) empty() bool {
	return m.Text == "" && len(m.Blocks) == 0 && len(m.Attachments) == 0
}

func (s *Server) chatPostEphemeral(p params, now time.Time) apiResult {
	ch := s.resolveChannel(p.get("channel"))
	if ch == "" {
		return slackError("channel_not_found")
	}
	if code := s.botViewLocked(ch).postCode(); code != "" {
		return slackError(code)
	}
	user := p.get("user")
	if user == "" || !s.isMemberLocked(ch, user) {
		return slackError("user_not_in_channel")
	}
	c, code, msgs := readContent(p)
	if code != "" {
		return slackError(code, msgs...)
	}
	if c.empty() {
		return slackError("no_text")
	}
	m := &Message{
		Channel:     ch,
		TS:          s.st.nextTS(now),
		ThreadTS:    p.get("thread_ts"),
		User:        BotUserID,
		Username:    p.get("username"),
		Text:        c.text,
		Blocks:      nonEmpty(c.blocks),
		Attachments: nonEmpty(c.attachments),
		Ephemeral:   true,
		Recipient:   user,
		Via:         "chat.postEphemeral",
	}
	s.st.channel(ch)
	s.st.ephemerals = append(s.st.ephemerals, m)
	return apiResult{
		resp:  chatResponse{slackResponse: okResponse, MessageTS: m.TS},
		lines: []string{s.messageLine(m, "")},
	}
}
