package slackstandin

import (
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/slack-go/slack"
)

// ---- views -----------------------------------------------------------------

// modalRequest is the view object an app sends.
type modalRequest struct {
	Type            string          `json:"type"`
	Title           json.RawMessage `json:"title"`
	Close           json.RawMessage `json:"close,omitempty"`
	Submit          json.RawMessage `json:"submit,omitempty"`
	Blocks          json.RawMessage `json:"blocks"`
	PrivateMetadata string          `json:"private_metadata,omitempty"`
	CallbackID      string          `json:"callback_id,omitempty"`
	ClearOnClose    bool            `json:"clear_on_close,omitempty"`
	NotifyOnClose   bool            `json:"notify_on_close,omitempty"`
	ExternalID      string          `json:"external_id,omitempty"`
	SubmitDisabled  bool            `json:"submit_disabled,omitempty"`
}

// wireView is a view as Slack returns it from views.*.
type wireView struct {
	ID                 string          `json:"id"`
	TeamID             string          `json:"team_id"`
	Type               string          `json:"type"`
	Title              json.RawMessage `json:"title,omitempty"`
	Close              json.RawMessage `json:"close,omitempty"`
	Submit             json.RawMessage `json:"submit,omitempty"`
	Blocks             json.RawMessage `json:"blocks"`
	PrivateMetadata    string          `json:"private_metadata"`
	CallbackID         string          `json:"callback_id"`
	State              slack.ViewState `json:"state"`
	Hash               string          `json:"hash"`
	ClearOnClose       bool            `json:"clear_on_close"`
	NotifyOnClose      bool            `json:"notify_on_close"`
	RootViewID         string          `json:"root_view_id"`
	PreviousViewID     *string         `json:"previous_view_id"`
	AppID              string          `json:"app_id"`
	ExternalID         string          `json:"external_id"`
	AppInstalledTeamID string          `json:"app_installed_team_id"`
	BotID              string          `json:"bot_id"`
}

type viewRecord struct {
	View
	req modalRequest
}

func (v *viewRecord) wire() wireView {
	w := wireView{
		ID:                 v.ID,
		TeamID:             DefaultTeamID,
		Type:               v.req.Type,
		Title:              v.req.Title,
		Close:              v.req.Close,
		Submit:             v.req.Submit,
		Blocks:             v.req.Blocks,
		PrivateMetadata:    v.req.PrivateMetadata,
		CallbackID:         v.req.CallbackID,
		State:              slack.ViewState{Values: map[string]map[string]slack.BlockAction{}},
		Hash:               v.Hash,
		ClearOnClose:       v.req.ClearOnClose,
		NotifyOnClose:      v.req.NotifyOnClose,
		RootViewID:         v.RootViewID,
		AppID:              DefaultAppID,
		ExternalID:         v.req.ExternalID,
		AppInstalledTeamID: DefaultTeamID,
		BotID:              BotID,
	}
	if len(w.Blocks) == 0 {
		w.Blocks = json.RawMessage("[]")
	}
	if v.PreviousViewID != "" {
		w.PreviousViewID = &v.PreviousViewID
	}
	return w
}

func viewResponse(v *viewRecord) any {
	return struct {
		slackResponse
		View wireView `json:"view"`
	}{okResponse, v.wire()}
}

var errInvalidView = errors.New("invalid view")

// parseModal validates a view the way Slack does for the limits apps
// commonly hit (the view's own fields here, its blocks in limits.go);
// messages go to response_metadata.messages.
func parseModal(p params) (modalRequest, json.RawMessage, []string) {
	raw, ok := p.json("view")
	if !ok {
		return modalRequest{}, nil, []string{"[ERROR] missing required field: view"}
	}
	var req modalRequest
	if err := json.Unmarshal(raw, &req); err != nil {
		return req, raw, []string{"[ERROR] " + errInvalidView.Error() + ": " + err.Error()}
	}
	var msgs []string
	if req.Type != "modal" {
		msgs = append(msgs, "[ERROR] must be 'modal' [json-pointer:/view/type]")
	}
	if len(req.Title) == 0 {
		msgs = append(msgs, "[ERROR] missing required field: title [json-pointer:/view]")
	}
	for _, f := range []struct {
		name string
		raw  json.RawMessage
	}{{"title", req.Title}, {"close", req.Close}, {"submit", req.Submit}} {
		if len(f.raw) == 0 {
			continue
		}
		var t slack.TextBlockObject
		if json.Unmarshal(f.raw, &t) != nil || t.Type != slack.PlainTextType {
			msgs = append(msgs, "[ERROR] must be a plain_text object [json-pointer:/view/"+f.name+"]")
		} else if n := len([]rune(t.Text)); n == 0 || n > 24 {
			msgs = append(msgs, "[ERROR] must be between 1 and 24 characters [json-pointer:/view/"+f.name+"/text]")
		}
	}
	var blocks []json.RawMessage
	if err := json.Unmarshal(req.Blocks, &blocks); err != nil {
		msgs = append(msgs, "[ERROR] missing required field: blocks [json-pointer:/view]")
	} else {
		msgs = append(msgs, checkBlocks(req.Blocks, modalSurface)...)
	}
	if len(req.PrivateMetadata) > 3000 {
		msgs = append(msgs, "[ERROR] must be less than 3001 characters [json-pointer:/view/private_metadata]")
	}
	if len(req.CallbackID) > 255 {
		msgs = append(msgs, "[ERROR] must be less than 256 characters [json-pointer:/view/callback_id]")
	}
	return req, raw, msgs
}

// useTrigger checks a trigger_id the stand-in issued (single use, expires
// after AckTimeout) and returns its user. Unknown trigger ids are accepted
// (tests may make them up) with an unknown user.
func (s *Server) useTrigger(id string, now time.Time) (user, code string) {
	if id == "" {
		return "", "invalid_arguments"
	}
	t, ok := s.st.triggers[id]
	if !ok {
		return "", ""
	}
	switch {
	case t.used:
		return "", "exchanged_trigger_id"
	case s.opts.AckTimeout > 0 && now.Sub(t.issued) > s.opts.AckTimeout:
		return "", "expired_trigger_id"
	}
	t.used = true
	return t.user, ""
}

func (s *Server) newViewRecord(method, trigger, user string, req modalRequest, raw json.RawMessage, now time.Time) *viewRecord {
	seq := s.st.nextSeq()
	v := &viewRecord{req: req}
	v.ID = "V" + strings.ToUpper(strconv.FormatInt(1_000_000_000+seq, 36))
	v.TriggerID = trigger
	v.User = user
	v.Method = method
	v.Hash = strconv.FormatInt(now.Unix(), 10) + "." + randomHex(4)
	v.OpenedAt, v.UpdatedAt = now, now
	v.setRequest(req, raw)
	return v
}

func (v *viewRecord) setRequest(req modalRequest, raw json.RawMessage) {
	v.req = req
	v.Type = req.Type
	v.Title = plainText(req.Title)
	v.CallbackID = req.CallbackID
	v.ExternalID = req.ExternalID
	v.PrivateMetadata = req.PrivateMetadata
	v.Blocks = req.Blocks
	v.JSON = raw
}

func plainText(raw json.RawMessage) string {
	var t slack.TextBlockObject
	if json.Unmarshal(raw, &t) != nil {
		return ""
	}
	return t.Text
}

func (s *Server) viewsOpen(p params, now time.Time) apiResult {
	trig := p.get("trigger_id")
	if trig == "" {
		trig = p.get("interactivity_pointer")
	}
	if trig == "" {
		return slackError("invalid_arguments", "[ERROR] missing required field: trigger_id")
	}
	req, raw, msgs := parseModal(p)
	if len(msgs) > 0 {
		return slackError("invalid_arguments", msgs...)
	}
	if req.ExternalID != "" && s.st.view("", req.ExternalID) != nil {
		return slackError("duplicate_external_id")
	}
	user, code := s.useTrigger(trig, now)
	if code != "" {
		return slackError(code)
	}
	v := s.newViewRecord("views.open", trig, user, req, raw, now)
	v.RootViewID = v.ID
	s.st.views = append(s.st.views, v)
	return apiResult{resp: viewResponse(v), lines: []string{s.viewLine(&v.View, "")}}
}

func (s *Server) viewsPush(p params, now time.Time) apiResult {
	trig := p.get("trigger_id")
	if trig == "" {
		trig = p.get("interactivity_pointer")
	}
	if trig == "" {
		return slackError("invalid_arguments", "[ERROR] missing required field: trigger_id")
	}
	req, raw, msgs := parseModal(p)
	if len(msgs) > 0 {
		return slackError("invalid_arguments", msgs...)
	}
	user, code := s.useTrigger(trig, now)
	if code != "" {
		return slackError(code)
	}
	v := s.newViewRecord("views.push", trig, user, req, raw, now)
	v.RootViewID = v.ID
	if prev := s.topView(user); user != "" && prev != nil {
		if s.stackDepth(prev.RootViewID) >= 3 {
			return slackError("push_limit_reached")
		}
		v.RootViewID, v.PreviousViewID = prev.RootViewID, prev.ID
	}
	s.st.views = append(s.st.views, v)
	return apiResult{resp: viewResponse(v), lines: []string{s.viewLine(&v.View, "pushed")}}
}

// topView is the most recently opened view of user that is still open.
func (s *Server) topView(user string) *viewRecord {
	for _, v := range slices.Backward(s.st.views) {
		if v.User == user && !v.Closed {
			return v
		}
	}
	return nil
}

func (s *Server) stackDepth(root string) int {
	n := 0
	for _, v := range s.st.views {
		if v.RootViewID == root && !v.Closed {
			n++
		}
	}
	return n
}

func (s *Server) viewsUpdate(p params, now time.Time) apiResult {
	id, ext := p.get("view_id"), p.get("external_id")
	if id == "" && ext == "" {
		return slackError("invalid_arguments", "[ERROR] either view_id or external_id is required")
	}
	req, raw, msgs := parseModal(p)
	if len(msgs) > 0 {
		return slackError("invalid_arguments", msgs...)
	}
	v := s.st.view(id, ext)
	if v == nil {
		return slackError("not_found")
	}
	if h := p.get("hash"); h != "" && h != v.Hash {
		return slackError("hash_conflict")
	}
	if req.ExternalID == "" {
		req.ExternalID = v.ExternalID
	}
	v.setRequest(req, raw)
	v.Hash = strconv.FormatInt(now.Unix(), 10) + "." + randomHex(4)
	v.UpdatedAt = now
	v.Errors = nil
	return apiResult{resp: viewResponse(v), lines: []string{s.viewLine(&v.View, "updated")}}
}
