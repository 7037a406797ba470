package slackstandin

import (
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"time"
)

// response_url: how an app answers the person who typed a command or
// clicked, wherever that was. Slack documents its limits in "Handling user
// interaction" (docs.slack.dev/interactivity/handling-user-interaction):
// a response_url may be used "up to 5 times within 30 minutes". Beyond
// either limit the stand-in answers HTTP 404 {"ok":false,"error":
// "expired_url"}: Slack documents no separate code for a used-up URL, so an
// exhausted URL is reported the way an expired one is.
//
// Membership does not apply: reaching the user where they clicked or typed,
// whether or not the app is in that conversation, is the point of a
// response_url. An archived channel is the exception: it accepts no
// messages at all, and a response_url is an incoming webhook for one
// interaction, so the stand-in refuses with the incoming webhooks' answer
// for an archived channel, HTTP 410 channel_is_archived (docs.slack.dev,
// Sending messages using incoming webhooks, "Handling errors").

// responseTarget is where a response_url's messages go.
type responseTarget struct {
	channel   string
	user      string
	messageTS string // the message an interaction came from, if any
	ephemeral bool   // that message was ephemeral
	issued    time.Time
	uses      int // accepted posts
}

// spent reports whether the URL has expired or been used up.
func (t *responseTarget) spent(now time.Time, ttl time.Duration) bool {
	return (ttl > 0 && now.Sub(t.issued) > ttl) || t.uses >= ResponseURLMaxUses
}

// NewResponseURL issues a response_url that posts to channel on behalf of
// user (ephemeral to user unless the body says response_type "in_channel"),
// valid for Options.ResponseURLTTL and ResponseURLMaxUses posts.
func (s *Server) NewResponseURL(channel, user string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.newResponseURLLocked(&responseTarget{channel: channel, user: user}, time.Now())
}

func (s *Server) newResponseURLLocked(t *responseTarget, now time.Time) string {
	id := randomHex(16)
	t.issued = now
	s.st.responses[id] = t
	return s.URL() + "/_standin/response/" + id
}

// responseMessage is the JSON body Slack accepts at a response_url.
type responseMessage struct {
	Text            string          `json:"text"`
	Blocks          json.RawMessage `json:"blocks"`
	Attachments     json.RawMessage `json:"attachments"`
	ResponseType    string          `json:"response_type"`
	ReplaceOriginal bool            `json:"replace_original"`
	DeleteOriginal  bool            `json:"delete_original"`
	ThreadTS        string          `json:"thread_ts"`
}

func (s *Server) serveResponseURL(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	p, perr := parseParams(r, body)
	call := Call{Method: MethodResponseURL, Params: maps.Clone(p.str), Body: body, At: now}
	if f := s.fault(MethodResponseURL); f != nil {
		if status, retryAfter, ok := f(call); ok {
			s.answerFault(w, call, status, retryAfter)
			return
		}
	}
	var msg responseMessage
	status, code := http.StatusOK, ""
	var msgs []string
	var line string
	s.mu.Lock()
	t := s.st.responses[r.PathValue("id")]
	switch {
	case t == nil || t.spent(now, s.opts.ResponseURLTTL):
		status, code = http.StatusNotFound, "expired_url"
	case perr != nil || !p.isJSON || json.Unmarshal(body, &msg) != nil:
		status, code = http.StatusBadRequest, "invalid_payload"
	case s.archivedLocked(t.channel):
		status, code = http.StatusGone, "channel_is_archived"
	default:
		line, code, msgs = s.applyResponseLocked(t, msg, MethodResponseURL, now)
		if code != "" {
			status = http.StatusBadRequest
		} else {
			t.uses++
		}
	}
	out := []byte(`{"ok":true}`)
	if code != "" {
		out, _ = json.Marshal(errorResponse(code, msgs))
	}
	call.Status, call.Response = status, out
	s.recordLocked(call)
	s.mu.Unlock()
	s.transcribe([]string{line})
	s.log.Debug("response_url call", "status", status, "error", code)
	writeJSON(w, status, out)
}

// applyResponseLocked shows a response_url (or slash command answer)
// message, checked like a chat.postMessage's content. It returns a
// transcript line, or a Slack error code with its
// response_metadata.messages.
func (s *Server) applyResponseLocked(t *responseTarget, msg responseMessage, via string, now time.Time) (line, code string, msgs []string) {
	blocks := nonEmpty(msg.Blocks)
	if len(blocks) > 0 {
		if !json.Valid(blocks) {
			return "", "invalid_blocks", nil
		}
		if msgs := checkBlocks(blocks, messageSurface); len(msgs) > 0 {
			return "", "invalid_blocks", msgs
		}
	}
	if len(msg.Text) > maxMessageText {
		return "", "msg_too_long", nil
	}
	switch {
	case msg.DeleteOriginal && t.messageTS != "":
		if t.ephemeral {
			for i, m := range s.st.ephemerals {
				if m.Channel == t.channel && m.TS == t.messageTS {
					s.st.ephemerals = append(s.st.ephemerals[:i], s.st.ephemerals[i+1:]...)
					return s.messageLine(m, "deleted"), "", nil
				}
			}
			return "", "message_not_found", nil
		}
		m := s.st.find(t.channel, t.messageTS)
		if m == nil || !s.st.remove(t.channel, t.messageTS) {
			return "", "message_not_found", nil
		}
		return s.messageLine(m, "deleted"), "", nil
	case msg.ReplaceOriginal && t.messageTS != "":
		var m *Message
		if t.ephemeral {
			m = s.st.findEphemeral(t.channel, t.messageTS)
		} else {
			m = s.st.find(t.channel, t.messageTS)
		}
		if m == nil {
			return "", "message_not_found", nil
		}
		m.Text, m.Blocks, m.Attachments = msg.Text, blocks, nonEmpty(msg.Attachments)
		m.Edited, m.EditedTS = true, s.st.nextTS(now)
		return s.messageLine(m, "edited"), "", nil
	}
	if msg.Text == "" && len(blocks) == 0 && isEmptyJSONArray(msg.Attachments) {
		return "", "no_text", nil
	}
	m := &Message{
		Channel:     t.channel,
		TS:          s.st.nextTS(now),
		ThreadTS:    msg.ThreadTS,
		User:        BotUserID,
		Text:        msg.Text,
		Blocks:      blocks,
		Attachments: nonEmpty(msg.Attachments),
		Via:         via,
	}
	s.st.channel(t.channel)
	if msg.ResponseType == "in_channel" {
		c := s.st.channel(t.channel)
		c.msgs = append(c.msgs, m)
	} else {
		m.Ephemeral, m.Recipient = true, t.user
		s.st.ephemerals = append(s.st.ephemerals, m)
	}
	return s.messageLine(m, ""), "", nil
}
