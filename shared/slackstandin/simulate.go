package slackstandin

import (
	"bytes"
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Sign returns Slack's v0 request signature, "v0=" + hex(HMAC-SHA256(secret,
// "v0:" + ts + ":" + body)), the value of the X-Slack-Signature header for a
// request whose X-Slack-Request-Timestamp is ts.
func Sign(secret string, ts int64, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte("v0:" + strconv.FormatInt(ts, 10) + ":"))
	mac.Write(body)
	return "v0=" + hex.EncodeToString(mac.Sum(nil))
}

// Command is a slash command typed by a simulated user. Only Command and
// UserID are required; the rest default to the stand-in's workspace
// (DefaultChannelID, DefaultTeamID, the user's display name ...).
type Command struct {
	Command     string `json:"command"`
	Text        string `json:"text"`
	UserID      string `json:"user_id"`
	UserName    string `json:"user_name,omitempty"`
	ChannelID   string `json:"channel_id,omitempty"`
	ChannelName string `json:"channel_name,omitempty"`
	TeamID      string `json:"team_id,omitempty"`
	TeamDomain  string `json:"team_domain,omitempty"`
}

// Forwarded is the ingress's answer to a simulated request.
type Forwarded struct {
	Status int
	Header http.Header
	Body   []byte
	// TriggerID and ResponseURL are the values the stand-in put into the
	// request ("" when the payload brought its own or had none).
	TriggerID   string
	ResponseURL string
}

// Errors returned by RunCommand and SendInteraction.
var (
	ErrNoTarget   = errors.New("slackstandin: target URL not configured (Options.CommandsURL / Options.InteractionsURL)")
	ErrBadRequest = errors.New("slackstandin: bad simulated request")
)

// RunCommand simulates a user typing a slash command: it builds Slack's
// exact form body, signs it with the signing secret, POSTs it to
// Options.CommandsURL within Options.AckTimeout, and returns the answer. A
// non-empty 200 answer is shown the way Slack shows it (as an ephemeral or,
// with response_type "in_channel", a channel message).
func (s *Server) RunCommand(ctx context.Context, cmd Command) (Forwarded, error) {
	if s.opts.CommandsURL == "" {
		return Forwarded{}, ErrNoTarget
	}
	if !strings.HasPrefix(cmd.Command, "/") || cmd.UserID == "" {
		return Forwarded{}, fmt.Errorf("%w: command must start with / and user_id is required", ErrBadRequest)
	}
	now := time.Now()
	if cmd.ChannelID == "" {
		cmd.ChannelID = DefaultChannelID
	}
	if cmd.TeamID == "" {
		cmd.TeamID = DefaultTeamID
	}
	if cmd.TeamDomain == "" {
		cmd.TeamDomain = DefaultTeamDomain
	}

	s.mu.Lock()
	ch := s.resolveChannel(cmd.ChannelID)
	if s.archivedLocked(ch) {
		s.mu.Unlock()
		return Forwarded{}, fmt.Errorf("%w: %s is archived, nobody can type there", ErrBadRequest, ch)
	}
	s.learnUserLocked(cmd.UserID, cmd.UserName)
	if cmd.UserName == "" {
		cmd.UserName = s.displayName(cmd.UserID)
	}
	if cmd.ChannelName == "" {
		cmd.ChannelName = s.channelName(ch)
		if strings.HasPrefix(ch, "D") {
			cmd.ChannelName = "directmessage"
		}
	}
	s.st.channel(ch)
	s.userActedLocked(ch, cmd.UserID)
	target := &responseTarget{channel: ch, user: cmd.UserID}
	fwd := Forwarded{
		TriggerID:   s.newTriggerLocked(cmd.UserID, ch, now),
		ResponseURL: s.newResponseURLLocked(target, now),
	}
	typed := strings.TrimSpace(cmd.Command + " " + cmd.Text)
	line := "[" + s.place(ch) + "] @" + s.displayName(cmd.UserID) + ": " + oneLine(typed)
	typedAct := &activity{Kind: activityCommand, Channel: ch, User: cmd.UserID, Text: typed, At: now}
	s.addActivityLocked(typedAct)
	s.mu.Unlock()
	s.transcribe([]string{line})

	// Slack's field order.
	fields := [][2]string{
		{"token", VerificationToken},
		{"team_id", cmd.TeamID},
		{"team_domain", cmd.TeamDomain},
		{"channel_id", ch},
		{"channel_name", cmd.ChannelName},
		{"user_id", cmd.UserID},
		{"user_name", cmd.UserName},
		{"command", cmd.Command},
		{"text", cmd.Text},
		{"api_app_id", DefaultAppID},
		{"is_enterprise_install", "false"},
		{"response_url", fwd.ResponseURL},
		{"trigger_id", fwd.TriggerID},
	}
	var body strings.Builder
	for i, f := range fields {
		if i > 0 {
			body.WriteByte('&')
		}
		body.WriteString(url.QueryEscape(f[0]) + "=" + url.QueryEscape(f[1]))
	}

	res, err := s.forward(ctx, s.opts.CommandsURL, []byte(body.String()))
	res.TriggerID, res.ResponseURL = fwd.TriggerID, fwd.ResponseURL
	if err != nil {
		s.failureLine(ch, cmd.UserID, cmd.Command, err)
		return res, err
	}
	s.log.Info("simulated slash command", "command", cmd.Command, "user", cmd.UserID, "channel", ch, "status", res.Status)
	if res.Status != http.StatusOK {
		s.failureLine(ch, cmd.UserID, cmd.Command, fmt.Errorf("http_service_error (HTTP %d)", res.Status))
		return res, nil
	}
	if len(bytes.TrimSpace(res.Body)) > 0 {
		s.showImmediateResponse(target, res, typedAct)
	}
	return res, nil
}

// failureLine tells the transcript reader what Slack would tell the user.
func (s *Server) failureLine(ch, user, what string, err error) {
	code := err.Error()
	if errors.Is(err, context.DeadlineExceeded) {
		code = "operation_timeout"
	}
	s.mu.Lock()
	failure := what + " failed with the error \"" + code + "\""
	line := "[" + s.place(ch) + "] (only @" + s.displayName(user) + " sees) Slackbot: " + failure
	s.addActivityLocked(&activity{Kind: activityFailed, Channel: ch, User: user, Text: failure, At: time.Now()})
	s.mu.Unlock()
	s.transcribe([]string{line})
	s.log.Warn("simulated request failed", "what", what, "user", user, "err", code)
}

// showImmediateResponse shows a slash command's synchronous answer. An
// in_channel answer shares the command too: Slack then shows "both the
// response message and the initial slash command entered by the user" to
// the channel (docs.slack.dev, Implementing slash commands).
func (s *Server) showImmediateResponse(t *responseTarget, res Forwarded, typed *activity) {
	var msg responseMessage
	ct, _, _ := mime.ParseMediaType(res.Header.Get("Content-Type"))
	if ct == "application/json" {
		if err := json.Unmarshal(res.Body, &msg); err != nil {
			s.log.Warn("slash command answered invalid JSON", "err", err)
			return
		}
	} else {
		msg.Text = string(res.Body)
	}
	s.mu.Lock()
	line, code, _ := s.applyResponseLocked(t, msg, "command_response", time.Now())
	if code == "" && msg.ResponseType == "in_channel" {
		typed.Shared = true
	}
	s.notifyLocked() // shown without a recorded call
	s.mu.Unlock()
	s.transcribe([]string{line})
}

// forward POSTs a signed form body the way Slack does.
func (s *Server) forward(ctx context.Context, target string, body []byte) (Forwarded, error) {
	if s.opts.AckTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.opts.AckTimeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return Forwarded{}, err
	}
	ts := time.Now().Unix()
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("User-Agent", "Slackbot 1.0 (+https://api.slack.com/robots)")
	req.Header.Set("X-Slack-Request-Timestamp", strconv.FormatInt(ts, 10))
	req.Header.Set("X-Slack-Signature", Sign(s.opts.SigningSecret, ts, body))
	resp, err := s.client.Do(req)
	if err != nil {
		return Forwarded{}, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return Forwarded{}, err
	}
	return Forwarded{Status: resp.StatusCode, Header: resp.Header, Body: out}, nil
}

// SendInteraction simulates a user clicking a button, submitting or closing
// a modal: payload is Slack's interaction payload (block_actions,
// view_submission, view_closed, shortcut ...). Fields a script would rather
// not spell out are filled in the way Slack fills them: token, api_app_id,
// team, user name, trigger_id, and, from the stand-in's state, the message
// and channel of a block_actions container, the view a view.id refers to
// (or, for view_submission without view.id, the user's top modal) and a
// response_url. The payload is posted signed as payload=<urlencoded JSON> to
// Options.InteractionsURL. A view_submission answer (response_action
// errors/update/push/clear, or an empty 200 that closes the view) is applied
// to the stand-in's views.
func (s *Server) SendInteraction(ctx context.Context, payload json.RawMessage) (Forwarded, error) {
	if s.opts.InteractionsURL == "" {
		return Forwarded{}, ErrNoTarget
	}
	var p map[string]any
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	if err := dec.Decode(&p); err != nil || p == nil {
		return Forwarded{}, fmt.Errorf("%w: payload must be a JSON object", ErrBadRequest)
	}
	typ, _ := p["type"].(string)
	if typ == "" {
		return Forwarded{}, fmt.Errorf("%w: payload.type is required", ErrBadRequest)
	}
	user := obj(p, "user")
	userID, _ := user["id"].(string)
	if userID == "" {
		return Forwarded{}, fmt.Errorf("%w: payload.user.id is required", ErrBadRequest)
	}
	now := time.Now()

	s.mu.Lock()
	fwd, viewID, line := s.fillInteractionLocked(p, typ, userID, now)
	s.mu.Unlock()
	s.transcribe([]string{line})

	js, err := json.Marshal(p)
	if err != nil {
		return fwd, err
	}
	body := []byte("payload=" + url.QueryEscape(string(js)))
	res, err := s.forward(ctx, s.opts.InteractionsURL, body)
	res.TriggerID, res.ResponseURL = fwd.TriggerID, fwd.ResponseURL
	if err != nil {
		s.failureLine(s.interactionChannel(p), userID, typ, err)
		return res, err
	}
	s.log.Info("simulated interaction", "type", typ, "user", userID, "status", res.Status)
	if res.Status == http.StatusOK && viewID != "" {
		switch typ {
		case "view_submission":
			s.applySubmissionAnswer(viewID, res.Body, now)
		case "view_closed":
			s.closeView(viewID)
		}
	}
	return res, nil
}

func obj(m map[string]any, k string) map[string]any {
	o, _ := m[k].(map[string]any)
	return o
}

func str(m map[string]any, k string) string {
	s, _ := m[k].(string)
	return s
}

func (s *Server) interactionChannel(p map[string]any) string {
	if c := str(obj(p, "container"), "channel_id"); c != "" {
		return c
	}
	if c := str(obj(p, "channel"), "id"); c != "" {
		return c
	}
	return DefaultChannelID
}

// fillInteractionLocked completes an interaction payload in place and
// returns the issued values, the id of the view it concerns and a transcript
// line.
func (s *Server) fillInteractionLocked(p map[string]any, typ, userID string, now time.Time) (Forwarded, string, string) {
	var fwd Forwarded
	setDefault(p, "token", VerificationToken)
	setDefault(p, "api_app_id", DefaultAppID)
	setDefault(p, "is_enterprise_install", false)
	setDefault(p, "enterprise", nil)
	setDefault(p, "team", map[string]any{"id": DefaultTeamID, "domain": DefaultTeamDomain})
	user := obj(p, "user")
	s.learnUserLocked(userID, cmp.Or(str(user, "name"), str(user, "username")))
	setDefault(user, "username", s.displayName(userID))
	setDefault(user, "name", s.displayName(userID))
	setDefault(user, "team_id", DefaultTeamID)

	container := obj(p, "container")
	ch := ""
	if container != nil && str(container, "type") == "message" {
		ch = s.resolveChannel(s.interactionChannel(p))
		s.userActedLocked(ch, userID)
		setDefault(p, "channel", map[string]any{"id": ch, "name": s.channelName(ch)})
		msgTS := str(container, "message_ts")
		eph, _ := container["is_ephemeral"].(bool)
		m := s.st.find(ch, msgTS)
		if eph {
			m = s.st.findEphemeral(ch, msgTS)
		}
		if m != nil && !eph {
			setDefault(p, "message", toWire(m))
		}
		if m != nil {
			fillActions(p, m.Blocks)
		}
		if _, ok := p["response_url"]; !ok {
			fwd.ResponseURL = s.newResponseURLLocked(&responseTarget{channel: ch, user: userID, messageTS: msgTS, ephemeral: eph}, now)
			p["response_url"] = fwd.ResponseURL
		}
	}

	// The view the interaction concerns.
	var v *viewRecord
	if pv := obj(p, "view"); pv != nil {
		v = s.st.view(str(pv, "id"), str(pv, "external_id"))
	}
	if v == nil && (typ == "view_submission" || typ == "view_closed") {
		v = s.topView(userID)
	}
	viewID := ""
	if v != nil {
		viewID = v.ID
		pv := obj(p, "view")
		if pv == nil {
			pv = map[string]any{}
			p["view"] = pv
		}
		var full map[string]any
		if b, err := json.Marshal(v.wire()); err == nil && json.Unmarshal(b, &full) == nil {
			for k, val := range full {
				setDefault(pv, k, val)
			}
		}
	}
	if typ == "view_submission" {
		setDefault(p, "response_urls", []any{})
	}
	if _, ok := p["trigger_id"]; !ok && typ != "view_closed" {
		fwd.TriggerID = s.newTriggerLocked(userID, ch, now)
		p["trigger_id"] = fwd.TriggerID
	}

	who := "@" + s.displayName(userID)
	var line string
	switch {
	case typ == "view_submission" || typ == "view_closed":
		verb := map[string]string{"view_submission": "submitted", "view_closed": "closed"}[typ]
		title := ""
		if v != nil {
			title = v.Title
		}
		line = "[modal for " + who + "] " + who + " " + verb + " \"" + oneLine(title) + "\""
	case typ == "block_actions":
		place := "modal for " + who
		if ch != "" {
			place = s.place(ch)
		}
		line = "[" + place + "] " + who + " clicked " + strconv.Quote(actionText(p))
		if ch != "" {
			s.addActivityLocked(&activity{Kind: activityClick, Channel: ch, User: userID, Text: actionText(p), At: now,
				ThreadTS: s.threadOfLocked(ch, str(container, "message_ts"))})
		}
	default:
		line = "[" + s.place(s.interactionChannel(p)) + "] " + who + " sent " + typ
	}
	return fwd, viewID, line
}

// fillActions completes each action of a block_actions payload from the
// element clicked, as Slack sends it: type, text and style of a button a
// script named by action_id only.
func fillActions(p map[string]any, blocks json.RawMessage) {
	acts, _ := p["actions"].([]any)
	for _, a := range acts {
		act, _ := a.(map[string]any)
		if act == nil || act["text"] != nil {
			continue
		}
		req := ClickRequest{ActionID: str(act, "action_id"), BlockID: str(act, "block_id")}
		if full, err := actionPayload(blocks, req, time.Now()); err == nil && full["type"] == "button" {
			for _, k := range []string{"type", "text", "style", "block_id", "action_ts"} {
				if v, ok := full[k]; ok {
					setDefault(act, k, v)
				}
			}
		}
	}
}

func setDefault(m map[string]any, k string, v any) {
	if m == nil {
		return
	}
	if _, ok := m[k]; !ok {
		m[k] = v
	}
}

// actionText describes the first action of a block_actions payload: the
// button's label, the option chosen, else the action id.
func actionText(p map[string]any) string {
	acts, _ := p["actions"].([]any)
	if len(acts) == 0 {
		return "something"
	}
	a, _ := acts[0].(map[string]any)
	if t := str(obj(a, "text"), "text"); t != "" {
		return t
	}
	if t := str(obj(obj(a, "selected_option"), "text"), "text"); t != "" {
		return t
	}
	return str(a, "action_id")
}

// threadOfLocked is the thread a message (or ephemeral) in ch belongs to,
// "" for a top-level message. s.mu must be held.
func (s *Server) threadOfLocked(ch, ts string) string {
	m := s.st.find(ch, ts)
	if m == nil {
		m = s.st.findEphemeral(ch, ts)
	}
	if m == nil || m.ThreadTS == m.TS {
		return ""
	}
	return m.ThreadTS
}

// applySubmissionAnswer applies the ingress's answer to a view_submission.
func (s *Server) applySubmissionAnswer(viewID string, body []byte, now time.Time) {
	var ans struct {
		ResponseAction string            `json:"response_action"`
		Errors         map[string]string `json:"errors"`
		View           json.RawMessage   `json:"view"`
	}
	if len(bytes.TrimSpace(body)) > 0 {
		if err := json.Unmarshal(body, &ans); err != nil {
			s.log.Warn("view_submission answered with invalid JSON", "err", err)
			return
		}
	}
	var lines []string
	s.mu.Lock()
	v := s.st.view(viewID, "")
	switch {
	case v == nil:
	case ans.ResponseAction == "errors":
		v.Errors = maps.Clone(ans.Errors)
		var parts []string
		for _, k := range sortedKeys(ans.Errors) {
			parts = append(parts, k+": "+ans.Errors[k])
		}
		lines = append(lines, s.viewLine(&v.View, "errors")+" — "+oneLine(strings.Join(parts, "; ")))
	case ans.ResponseAction == "update" || ans.ResponseAction == "push":
		req, raw, msgs := parseModal(params{raw: map[string]json.RawMessage{"view": ans.View}, str: map[string]string{}})
		if len(msgs) > 0 {
			lines = append(lines, s.viewLine(&v.View, "invalid response_action view")+" — "+strings.Join(msgs, "; "))
			break
		}
		if ans.ResponseAction == "update" {
			v.setRequest(req, raw)
			v.Hash = strconv.FormatInt(now.Unix(), 10) + "." + randomHex(4)
			v.UpdatedAt, v.Errors = now, nil
			lines = append(lines, s.viewLine(&v.View, "updated"))
			break
		}
		nv := s.newViewRecord("response_action", "", v.User, req, raw, now)
		nv.RootViewID, nv.PreviousViewID = v.RootViewID, v.ID
		s.st.views = append(s.st.views, nv)
		lines = append(lines, s.viewLine(&nv.View, "pushed"))
	case ans.ResponseAction == "clear":
		for _, o := range s.st.views {
			if o.RootViewID == v.RootViewID && !o.Closed {
				o.Closed = true
			}
		}
		lines = append(lines, s.viewLine(&v.View, "closed all"))
	default:
		v.Closed, v.Errors = true, nil
		lines = append(lines, s.viewLine(&v.View, "closed"))
	}
	s.notifyLocked() // field errors and closed views record no call
	s.mu.Unlock()
	s.transcribe(lines)
}

func (s *Server) closeView(viewID string) {
	s.mu.Lock()
	var lines []string
	if v := s.st.view(viewID, ""); v != nil && !v.Closed {
		v.Closed = true
		lines = append(lines, s.viewLine(&v.View, "closed"))
		s.notifyLocked()
	}
	s.mu.Unlock()
	s.transcribe(lines)
}

func sortedKeys(m map[string]string) []string { return slices.Sorted(maps.Keys(m)) }

// ---- HTTP wrappers -----------------------------------------------------------

func (s *Server) serveCommand(w http.ResponseWriter, r *http.Request) {
	var cmd Command
	if err := json.NewDecoder(io.LimitReader(r.Body, maxBody)).Decode(&cmd); err != nil {
		writeSimError(w, fmt.Errorf("%w: %v", ErrBadRequest, err))
		return
	}
	res, err := s.RunCommand(r.Context(), cmd)
	if err != nil {
		writeSimError(w, err)
		return
	}
	writeForwarded(w, res)
}

func (s *Server) serveInteraction(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Payload json.RawMessage `json:"payload"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, maxBody)).Decode(&req); err != nil {
		writeSimError(w, fmt.Errorf("%w: %v", ErrBadRequest, err))
		return
	}
	res, err := s.SendInteraction(r.Context(), req.Payload)
	if err != nil {
		writeSimError(w, err)
		return
	}
	writeForwarded(w, res)
}

func writeForwarded(w http.ResponseWriter, res Forwarded) {
	if ct := res.Header.Get("Content-Type"); ct != "" {
		w.Header().Set("Content-Type", ct)
	}
	if res.TriggerID != "" {
		w.Header().Set("X-Standin-Trigger-Id", res.TriggerID)
	}
	if res.ResponseURL != "" {
		w.Header().Set("X-Standin-Response-Url", res.ResponseURL)
	}
	w.WriteHeader(res.Status)
	_, _ = w.Write(res.Body)
}

func writeSimError(w http.ResponseWriter, err error) {
	status := http.StatusBadGateway
	switch {
	case errors.Is(err, ErrBadRequest):
		status = http.StatusBadRequest
	case errors.Is(err, ErrNoTarget):
		status = http.StatusServiceUnavailable
	case errors.Is(err, context.DeadlineExceeded):
		status = http.StatusGatewayTimeout
	}
	out, _ := json.Marshal(map[string]any{"ok": false, "error": err.Error()})
	writeJSON(w, status, out)
}
