package slackstandin

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// The page's actions, as JSON endpoints a script may use too: the page
// says what a person did ("U clicked action A of message TS", "U submitted
// view V with these values") and the stand-in builds the payload Slack
// would send, from its own copy of the message or view, and sends it
// through SendInteraction: signed, with a trigger_id and response_url.

// ErrNotVisible is returned when a user acts on something Slack would not
// show them: someone else's ephemeral, DM or modal.
var ErrNotVisible = errors.New("slackstandin: that user cannot see it")

// ClickRequest is POST /_standin/play/click.
type ClickRequest struct {
	UserID    string `json:"user_id"`
	ChannelID string `json:"channel_id"`
	MessageTS string `json:"message_ts"`
	ActionID  string `json:"action_id"`
	// BlockID picks among elements sharing an action_id (optional).
	BlockID string `json:"block_id,omitempty"`
	// Value is the option chosen in a static_select.
	Value string `json:"value,omitempty"`
}

// Click sends the block_actions payload of user clicking an element of a
// message (or ephemeral message) they can see.
func (s *Server) Click(ctx context.Context, req ClickRequest) (Forwarded, error) {
	if req.UserID == "" || req.MessageTS == "" || req.ActionID == "" {
		return Forwarded{}, fmt.Errorf("%w: user_id, message_ts and action_id are required", ErrBadRequest)
	}
	now := time.Now()
	s.mu.Lock()
	ch := s.resolveChannel(cmp.Or(req.ChannelID, DefaultChannelID))
	m, eph := s.st.find(ch, req.MessageTS), false
	if m == nil {
		if m = s.st.findEphemeral(ch, req.MessageTS); m != nil {
			eph = true
		}
	}
	var action map[string]any
	var err error
	switch {
	case m == nil:
		err = fmt.Errorf("%w: no message %s in %s", ErrBadRequest, req.MessageTS, ch)
	case eph && m.Recipient != req.UserID, !s.isMemberLocked(ch, req.UserID):
		err = fmt.Errorf("%w: %s cannot see message %s", ErrNotVisible, req.UserID, req.MessageTS)
	default:
		action, err = actionPayload(m.Blocks, req, now)
	}
	s.mu.Unlock()
	if err != nil {
		return Forwarded{}, err
	}
	payload, _ := json.Marshal(map[string]any{
		"type":      "block_actions",
		"user":      map[string]any{"id": req.UserID},
		"container": map[string]any{"type": "message", "message_ts": req.MessageTS, "channel_id": ch, "is_ephemeral": eph},
		"actions":   []any{action},
		"state":     map[string]any{"values": map[string]any{}},
	})
	return s.SendInteraction(ctx, payload)
}

// actionPayload finds the element and describes the click as Slack does.
func actionPayload(blocks json.RawMessage, req ClickRequest, now time.Time) (map[string]any, error) {
	var bl []bkBlock
	_ = json.Unmarshal(blocks, &bl)
	for _, b := range bl {
		if req.BlockID != "" && b.BlockID != req.BlockID {
			continue
		}
		elems := b.Elements
		if b.Type == "section" && len(b.Accessory) > 0 {
			elems = []json.RawMessage{b.Accessory}
		} else if b.Type != "actions" {
			continue
		}
		for _, raw := range elems {
			var e bkElement
			if json.Unmarshal(raw, &e) != nil || e.ActionID != req.ActionID {
				continue
			}
			a := map[string]any{"type": e.Type, "action_id": e.ActionID, "block_id": b.BlockID,
				"action_ts": strconv.FormatFloat(float64(now.UnixMicro())/1e6, 'f', 6, 64)}
			switch e.Type {
			case "button":
				var text map[string]any // a map, so the transcript and the page can read the label
				_ = json.Unmarshal(e.Text, &text)
				a["text"] = text
				if e.Value != "" {
					a["value"] = e.Value
				}
				if e.Style != "" {
					a["style"] = e.Style
				}
			case "static_select":
				i := slices.IndexFunc(e.allOptions(), func(o bkOption) bool { return o.Value == req.Value })
				if i < 0 {
					return nil, fmt.Errorf("%w: %s offers no option %q", ErrBadRequest, e.ActionID, req.Value)
				}
				a["selected_option"] = e.allOptions()[i]
			default:
				return nil, fmt.Errorf("%w: the page cannot act on a %s", ErrBadRequest, e.Type)
			}
			return a, nil
		}
	}
	return nil, fmt.Errorf("%w: the message has no element %q", ErrBadRequest, req.ActionID)
}

// SubmitRequest is POST /_standin/play/submit: the values typed or chosen,
// by block_id: a string, a list of strings (checkboxes), or null.
type SubmitRequest struct {
	UserID string                     `json:"user_id"`
	ViewID string                     `json:"view_id"`
	Values map[string]json.RawMessage `json:"values"`
	// SkipClientChecks sends what Slack's client would refuse to send (a
	// required field left empty, too many characters), to see the app's
	// own validation.
	SkipClientChecks bool `json:"skip_client_checks,omitempty"`
}

// SubmitResult says what became of a submission: the view closed, or it
// shows field errors, from Slack's client (CheckedBy "client", nothing was
// sent) or from the app's response_action "errors" (CheckedBy "app").
type SubmitResult struct {
	Closed    bool              `json:"closed"`
	Errors    map[string]string `json:"errors,omitempty"`
	CheckedBy string            `json:"checked_by,omitempty"`
}

// Submit submits user's open view with values, as Slack's client does:
// first its own checks, then a view_submission with the view's state.
func (s *Server) Submit(ctx context.Context, req SubmitRequest) (SubmitResult, Forwarded, error) {
	s.mu.Lock()
	v := s.st.view(req.ViewID, "")
	var inputs []bkBlock
	var err error
	switch {
	case req.UserID == "" || req.ViewID == "":
		err = fmt.Errorf("%w: user_id and view_id are required", ErrBadRequest)
	case v == nil:
		err = fmt.Errorf("%w: no view %s", ErrBadRequest, req.ViewID)
	case v.User != "" && v.User != req.UserID:
		err = fmt.Errorf("%w: view %s is not %s's", ErrNotVisible, req.ViewID, req.UserID)
	case v.Closed:
		err = fmt.Errorf("%w: view %s is closed", ErrBadRequest, req.ViewID)
	default:
		inputs = inputBlocks(v.Blocks)
	}
	s.mu.Unlock()
	if err != nil {
		return SubmitResult{}, Forwarded{}, err
	}
	if !req.SkipClientChecks {
		if errs := clientChecks(inputs, req.Values); len(errs) > 0 {
			return SubmitResult{Errors: errs, CheckedBy: "client"}, Forwarded{}, nil
		}
	}
	state, err := viewState(inputs, req.Values)
	if err != nil {
		return SubmitResult{}, Forwarded{}, err
	}
	payload, _ := json.Marshal(map[string]any{
		"type": "view_submission",
		"user": map[string]any{"id": req.UserID},
		"view": map[string]any{"id": req.ViewID, "state": map[string]any{"values": state}},
	})
	fwd, err := s.SendInteraction(ctx, payload)
	if err != nil {
		return SubmitResult{}, fwd, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	res := SubmitResult{Closed: v.Closed, Errors: maps.Clone(v.Errors)}
	if len(res.Errors) > 0 {
		res.CheckedBy = "app"
	}
	return res, fwd, nil
}

// inputBlocks are a view's input blocks, in order.
func inputBlocks(raw json.RawMessage) []bkBlock {
	var blocks []bkBlock
	_ = json.Unmarshal(raw, &blocks)
	return slices.DeleteFunc(blocks, func(b bkBlock) bool { return b.Type != "input" })
}

// submitted reads one block's submitted value: a string, strings, or none.
func submitted(raw json.RawMessage) (one string, many []string, ok bool) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil, true
	}
	if json.Unmarshal(raw, &one) == nil {
		return one, nil, true
	}
	if json.Unmarshal(raw, &many) == nil {
		return "", many, true
	}
	return "", nil, false
}

// clientChecks are the checks Slack's client makes before it sends a
// view_submission at all: a required input left empty, a text input
// outside its min_length/max_length, a choice the element does not offer.
// The messages are the stand-in's wording.
func clientChecks(inputs []bkBlock, values map[string]json.RawMessage) map[string]string {
	errs := map[string]string{}
	for _, b := range inputs {
		var e bkElement
		_ = json.Unmarshal(b.Element, &e)
		one, many, ok := submitted(values[b.BlockID])
		if !ok {
			errs[b.BlockID] = "This value cannot be read."
			continue
		}
		empty := strings.TrimSpace(one) == "" && len(many) == 0
		n := utf8.RuneCountInString(one)
		switch {
		case empty && !b.Optional:
			errs[b.BlockID] = "Please complete this required field."
		case empty:
		case e.MaxLength > 0 && n > e.MaxLength:
			errs[b.BlockID] = fmt.Sprintf("Please enter no more than %d characters (this is %d).", e.MaxLength, n)
		case e.MinLength > 0 && n < e.MinLength:
			errs[b.BlockID] = fmt.Sprintf("Please enter at least %d characters.", e.MinLength)
		case len(e.allOptions()) > 0 && !offered(e, one, many):
			errs[b.BlockID] = "Please choose one of the options."
		}
	}
	return errs
}

func offered(e bkElement, one string, many []string) bool {
	opts := e.allOptions()
	has := func(v string) bool { return slices.ContainsFunc(opts, func(o bkOption) bool { return o.Value == v }) }
	if one != "" && !has(one) {
		return false
	}
	for _, v := range many {
		if !has(v) {
			return false
		}
	}
	return true
}

// viewState builds view.state.values as Slack sends it: every input
// block, by block_id and action_id, in its element's shape; an empty
// field is null (or an empty list for checkboxes).
func viewState(inputs []bkBlock, values map[string]json.RawMessage) (map[string]any, error) {
	state := map[string]any{}
	for _, b := range inputs {
		var e bkElement
		_ = json.Unmarshal(b.Element, &e)
		one, many, ok := submitted(values[b.BlockID])
		if !ok {
			return nil, fmt.Errorf("%w: value of %s is neither a string nor a list", ErrBadRequest, b.BlockID)
		}
		option := func(v string) any {
			if i := slices.IndexFunc(e.allOptions(), func(o bkOption) bool { return o.Value == v }); i >= 0 {
				return e.allOptions()[i]
			}
			if v == "" {
				return nil
			}
			return bkOption{Text: bkText{Type: "plain_text", Text: v}, Value: v} // not offered: sent as typed
		}
		val := map[string]any{"type": e.Type}
		switch e.Type {
		case "static_select", "radio_buttons":
			val["selected_option"] = option(one)
		case "checkboxes":
			opts := []any{}
			for _, v := range many {
				opts = append(opts, option(v))
			}
			val["selected_options"] = opts
		case "users_select":
			val["selected_user"] = nullable(one)
		case "conversations_select":
			val["selected_conversation"] = nullable(one)
		case "channels_select":
			val["selected_channel"] = nullable(one)
		case "datepicker":
			val["selected_date"] = nullable(one)
		case "timepicker":
			val["selected_time"] = nullable(one)
		default:
			val["value"] = nullable(one)
		}
		state[b.BlockID] = map[string]any{e.ActionID: val}
	}
	return state, nil
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// CloseView closes user's view as the modal's Cancel or × does; Slack
// tells the app (view_closed) only when the view asked, notify_on_close.
func (s *Server) CloseView(ctx context.Context, user, viewID string) error {
	s.mu.Lock()
	v := s.st.view(viewID, "")
	var err error
	notify := false
	switch {
	case v == nil:
		err = fmt.Errorf("%w: no view %s", ErrBadRequest, viewID)
	case v.User != "" && v.User != user:
		err = fmt.Errorf("%w: view %s is not %s's", ErrNotVisible, viewID, user)
	default:
		notify = v.req.NotifyOnClose && !v.Closed
	}
	s.mu.Unlock()
	if err != nil {
		return err
	}
	if notify {
		payload, _ := json.Marshal(map[string]any{"type": "view_closed", "user": map[string]any{"id": user},
			"view": map[string]any{"id": viewID}, "is_cleared": false})
		if _, err := s.SendInteraction(ctx, payload); err != nil {
			s.log.Warn("view_closed not delivered", "err", err)
		}
	}
	s.closeView(viewID) // closed on the screen whatever the app answered
	return nil
}

func (s *Server) servePlayClick(w http.ResponseWriter, r *http.Request) {
	var req ClickRequest
	if !decodeBody(w, r, &req) {
		return
	}
	res, err := s.Click(r.Context(), req)
	if err != nil {
		writePlayError(w, err)
		return
	}
	writePlayForwarded(w, res, nil)
}

func (s *Server) servePlaySubmit(w http.ResponseWriter, r *http.Request) {
	var req SubmitRequest
	if !decodeBody(w, r, &req) {
		return
	}
	res, fwd, err := s.Submit(r.Context(), req)
	if err != nil {
		writePlayError(w, err)
		return
	}
	if res.CheckedBy == "client" { // nothing was sent; the answer is the errors
		out, _ := json.Marshal(map[string]any{"ok": true, "result": res})
		writeJSON(w, http.StatusOK, out)
		return
	}
	writePlayForwarded(w, fwd, res)
}

func (s *Server) servePlayClose(w http.ResponseWriter, r *http.Request) {
	var req struct {
		UserID string `json:"user_id"`
		ViewID string `json:"view_id"`
	}
	if !decodeBody(w, r, &req) {
		return
	}
	if err := s.CloseView(r.Context(), req.UserID, req.ViewID); err != nil {
		writePlayError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, []byte(`{"ok":true}`))
}

// writePlayForwarded answers with what the app answered: 200 when it took
// the request, 502 with the app's status otherwise (Slack shows the person
// a warning then).
func writePlayForwarded(w http.ResponseWriter, fwd Forwarded, res any) {
	body := map[string]any{"ok": fwd.Status == http.StatusOK, "app_status": fwd.Status}
	if res != nil {
		body["result"] = res
	}
	status := http.StatusOK
	if fwd.Status != http.StatusOK {
		status = http.StatusBadGateway
		body["error"] = fmt.Sprintf("the app answered HTTP %d: %s", fwd.Status, strings.TrimSpace(string(fwd.Body)))
	}
	out, _ := json.Marshal(body)
	writeJSON(w, status, out)
}

func writePlayError(w http.ResponseWriter, err error) {
	if errors.Is(err, ErrNotVisible) {
		out, _ := json.Marshal(map[string]any{"ok": false, "error": err.Error()})
		writeJSON(w, http.StatusForbidden, out)
		return
	}
	writeSimError(w, err)
}
