package slackstandin_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/coffeebuddy/coffeebuddy/shared/slackstandin"
)

func TestSignMatchesSlackDocs(t *testing.T) {
	// The worked example from Slack's "Verifying requests from Slack".
	const (
		secret = "8f742231b10e8888abcd99yyyzzz85a5"
		body   = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
		want   = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
	)
	if got := slackstandin.Sign(secret, 1531420618, []byte(body)); got != want {
		t.Errorf("Sign = %s, want %s", got, want)
	}
}

// fakeIngress is a stand-in for slack-ingress: it checks Slack's signature
// by recomputing the HMAC itself and hands each request to handle.
type fakeIngress struct {
	t      *testing.T
	secret string
	handle func(w http.ResponseWriter, form url.Values)

	mu     sync.Mutex
	bodies [][]byte
	heads  []http.Header
}

func (f *fakeIngress) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.bodies = append(f.bodies, body)
	f.heads = append(f.heads, r.Header.Clone())
	f.mu.Unlock()

	ts := r.Header.Get("X-Slack-Request-Timestamp")
	mac := hmac.New(sha256.New, []byte(f.secret))
	mac.Write([]byte("v0:" + ts + ":"))
	mac.Write(body)
	want := "v0=" + hex.EncodeToString(mac.Sum(nil))
	if !hmac.Equal([]byte(r.Header.Get("X-Slack-Signature")), []byte(want)) {
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	// slack-go's verifier agrees (and checks the 5-minute window).
	sv, err := slack.NewSecretsVerifier(r.Header, f.secret)
	if err == nil {
		_, _ = sv.Write(body)
		err = sv.Ensure()
	}
	if err != nil {
		http.Error(w, "slack-go verifier: "+err.Error(), http.StatusUnauthorized)
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
		http.Error(w, "content type "+ct, http.StatusBadRequest)
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	f.handle(w, form)
}

func (f *fakeIngress) last() ([]byte, http.Header) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.bodies) == 0 {
		return nil, nil
	}
	return f.bodies[len(f.bodies)-1], f.heads[len(f.heads)-1]
}

func postJSON(t *testing.T, u string, v any) (*http.Response, []byte) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(u, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, body
}

func TestSimulatedSlashCommand(t *testing.T) {
	const secret = "test-signing-secret"
	var srv *slackstandin.Server
	var got slack.SlashCommand
	ingress := &fakeIngress{t: t, secret: secret}
	ingress.handle = func(w http.ResponseWriter, form url.Values) {
		r := &http.Request{Method: http.MethodPost, PostForm: form, Form: form}
		got, _ = slack.SlashCommandParse(r)
		// The 3-second path: open the order modal with the fresh trigger_id.
		api := slack.New(srv.BotToken(), slack.OptionAPIURL(srv.APIURL()))
		if _, err := api.OpenView(got.TriggerID, modal("Order coffee")); err != nil {
			http.Error(w, "views.open: "+err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"response_type":"ephemeral","text":"Starting a coffee run…"}`))
	}
	ing := httptest.NewServer(ingress)
	t.Cleanup(ing.Close)
	srv = slackstandin.NewTestServer(t, slackstandin.Options{
		SigningSecret: secret,
		Users:         map[string]string{"U1": "alice"},
		CommandsURL:   ing.URL + "/slack/commands",
	})

	resp, body := postJSON(t, srv.URL()+"/_standin/command", map[string]string{
		"command": "/coffee", "text": "5", "user_id": "U1", "user_name": "alice", "channel_id": "C0LOCAL", "team_id": "T0LOCAL",
	})
	if resp.StatusCode != http.StatusOK || string(body) != `{"response_type":"ephemeral","text":"Starting a coffee run…"}` {
		t.Fatalf("simulate = %d %s", resp.StatusCode, body)
	}

	raw, hdr := ingress.last()
	ts, err := strconv.ParseInt(hdr.Get("X-Slack-Request-Timestamp"), 10, 64)
	if err != nil || time.Since(time.Unix(ts, 0)).Abs() > time.Minute {
		t.Errorf("timestamp header %q", hdr.Get("X-Slack-Request-Timestamp"))
	}
	if hdr.Get("X-Slack-Signature") != slackstandin.Sign(secret, ts, raw) {
		t.Error("signature differs from Sign")
	}
	// Slack's field order.
	var keys []string
	for kv := range strings.SplitSeq(string(raw), "&") {
		k, _, _ := strings.Cut(kv, "=")
		keys = append(keys, k)
	}
	wantKeys := "token,team_id,team_domain,channel_id,channel_name,user_id,user_name,command,text,api_app_id,is_enterprise_install,response_url,trigger_id"
	if strings.Join(keys, ",") != wantKeys {
		t.Errorf("body fields = %s\nwant %s", strings.Join(keys, ","), wantKeys)
	}
	if !strings.Contains(string(raw), "command=%2Fcoffee&text=5&") {
		t.Errorf("body = %s", raw)
	}

	if got.Command != "/coffee" || got.Text != "5" || got.UserID != "U1" || got.UserName != "alice" ||
		got.ChannelID != "C0LOCAL" || got.ChannelName != "coffee" || got.TeamID != "T0LOCAL" ||
		got.TeamDomain != slackstandin.DefaultTeamDomain || got.APIAppID != slackstandin.DefaultAppID ||
		got.Token != slackstandin.VerificationToken || got.TriggerID == "" ||
		!strings.HasPrefix(got.ResponseURL, srv.URL()+"/_standin/response/") {
		t.Errorf("slash command = %+v", got)
	}
	if resp.Header.Get("X-Standin-Trigger-Id") != got.TriggerID {
		t.Errorf("trigger header %q", resp.Header.Get("X-Standin-Trigger-Id"))
	}

	// The modal opened with the command's trigger belongs to the user.
	if v := srv.Views("U1"); len(v) != 1 || v[0].TriggerID != got.TriggerID {
		t.Errorf("views = %+v", v)
	}
	// Slack shows the synchronous answer to the user only.
	if e := srv.Ephemerals("U1"); len(e) != 1 || e[0].Text != "Starting a coffee run…" || e[0].Via != "command_response" {
		t.Errorf("ephemerals = %+v", e)
	}

	// The response_url takes Slack's JSON, as slack-go sends it.
	api := newClient(srv)
	if _, _, err := api.PostMessage("", slack.MsgOptionResponseURL(got.ResponseURL, slack.ResponseTypeInChannel), slack.MsgOptionText("Run started by <@U1>", false)); err != nil {
		t.Fatalf("response_url in_channel: %v", err)
	}
	if err := slack.PostWebhook(got.ResponseURL, &slack.WebhookMessage{Text: "Your order is in", ResponseType: slack.ResponseTypeEphemeral}); err != nil {
		t.Fatalf("response_url ephemeral: %v", err)
	}
	if m := srv.Messages("C0LOCAL"); len(m) != 1 || m[0].Text != "Run started by <@U1>" || m[0].Via != slackstandin.MethodResponseURL {
		t.Errorf("channel messages = %+v", m)
	}
	if e := srv.Ephemerals("U1"); len(e) != 2 || e[1].Text != "Your order is in" {
		t.Errorf("ephemerals = %+v", e)
	}
	if c := srv.Calls(slackstandin.MethodResponseURL); len(c) != 2 || c[0].Params["response_type"] != "in_channel" || c[0].Status != http.StatusOK {
		t.Errorf("response_url calls = %+v", c)
	}
	// Unknown response_url.
	if err := slack.PostWebhook(srv.URL()+"/_standin/response/nope", &slack.WebhookMessage{Text: "x"}); err == nil {
		t.Error("unknown response_url accepted")
	}
}

func TestSimulatedCommandErrors(t *testing.T) {
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // so the server notices the client hanging up
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	t.Cleanup(slow.Close)
	tests := []struct {
		name   string
		opts   slackstandin.Options
		body   any
		status int
	}{
		{"no commands URL", slackstandin.Options{}, map[string]string{"command": "/coffee", "user_id": "U1"}, http.StatusServiceUnavailable},
		{"missing user", slackstandin.Options{CommandsURL: slow.URL}, map[string]string{"command": "/coffee"}, http.StatusBadRequest},
		{"not JSON", slackstandin.Options{CommandsURL: slow.URL}, "nope", http.StatusBadRequest},
		{"ack timeout", slackstandin.Options{CommandsURL: slow.URL, AckTimeout: 50 * time.Millisecond}, map[string]string{"command": "/coffee", "user_id": "U1"}, http.StatusGatewayTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := slackstandin.NewTestServer(t, tt.opts)
			resp, body := postJSON(t, srv.URL()+"/_standin/command", tt.body)
			if resp.StatusCode != tt.status {
				t.Errorf("status = %d %s, want %d", resp.StatusCode, body, tt.status)
			}
		})
	}
}

func TestSimulatedBlockAction(t *testing.T) {
	var srv *slackstandin.Server
	var got slack.InteractionCallback
	ingress := &fakeIngress{t: t, secret: slackstandin.DefaultSigningSecret}
	ingress.handle = func(w http.ResponseWriter, form url.Values) {
		if err := json.Unmarshal([]byte(form.Get("payload")), &got); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		// Answer through response_url, replacing the original message.
		api := slack.New(srv.BotToken(), slack.OptionAPIURL(srv.APIURL()))
		if _, _, err := api.PostMessage("", slack.MsgOptionReplaceOriginal(got.ResponseURL), slack.MsgOptionText("Run: alice is ordering", false)); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusOK)
	}
	ing := httptest.NewServer(ingress)
	t.Cleanup(ing.Close)
	srv = slackstandin.NewTestServer(t, slackstandin.Options{
		Users:           map[string]string{"U1ALICE": "alice"},
		InteractionsURL: ing.URL + "/slack/interactions",
	})
	_, ts, err := newClient(srv).PostMessage("C0LOCAL", slack.MsgOptionText("Coffee run", false))
	if err != nil {
		t.Fatal(err)
	}

	tmpl, err := os.ReadFile("testdata/block_actions.json")
	if err != nil {
		t.Fatal(err)
	}
	payload := json.RawMessage(strings.ReplaceAll(string(tmpl), "{{MESSAGE_TS}}", ts))
	resp, body := postJSON(t, srv.URL()+"/_standin/interaction", map[string]any{"payload": payload})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("simulate = %d %s", resp.StatusCode, body)
	}

	raw, _ := ingress.last()
	if !strings.HasPrefix(string(raw), "payload=%7B") {
		t.Errorf("body = %.40s…, want payload=<urlencoded JSON>", raw)
	}
	if got.Type != slack.InteractionTypeBlockActions || got.User.ID != "U1ALICE" || got.User.Name != "alice" ||
		got.Team.ID != slackstandin.DefaultTeamID || got.APIAppID != slackstandin.DefaultAppID || got.TriggerID == "" ||
		got.Channel.ID != "C0LOCAL" || got.Container.MessageTs != ts || got.Message.Timestamp != ts || got.Message.Text != "Coffee run" {
		t.Errorf("interaction = %+v", got)
	}
	if len(got.ActionCallback.BlockActions) != 1 || got.ActionCallback.BlockActions[0].ActionID != "add_order" {
		t.Errorf("actions = %+v", got.ActionCallback.BlockActions)
	}
	if m := srv.Messages("C0LOCAL"); len(m) != 1 || m[0].Text != "Run: alice is ordering" || !m[0].Edited {
		t.Errorf("message after replace_original = %+v", m)
	}
}

func TestSimulatedViewSubmission(t *testing.T) {
	var srv *slackstandin.Server
	answers := []string{
		`{"response_action":"errors","errors":{"drink":"Pick a drink"}}`,
		``,
	}
	var mu sync.Mutex
	var got []slack.InteractionCallback
	ingress := &fakeIngress{t: t, secret: slackstandin.DefaultSigningSecret}
	ingress.handle = func(w http.ResponseWriter, form url.Values) {
		var cb slack.InteractionCallback
		if err := json.Unmarshal([]byte(form.Get("payload")), &cb); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		got = append(got, cb)
		answer := answers[len(got)-1]
		mu.Unlock()
		if answer != "" {
			w.Header().Set("Content-Type", "application/json")
		}
		_, _ = w.Write([]byte(answer))
	}
	ing := httptest.NewServer(ingress)
	t.Cleanup(ing.Close)
	srv = slackstandin.NewTestServer(t, slackstandin.Options{InteractionsURL: ing.URL})

	view, err := newClient(srv).OpenView(srv.NewTriggerID("U1"), modal("Order coffee"))
	if err != nil {
		t.Fatal(err)
	}
	submit := map[string]any{"payload": map[string]any{
		"type": "view_submission",
		"user": map[string]any{"id": "U1"},
		"view": map[string]any{"id": view.ID, "state": map[string]any{"values": map[string]any{
			"drink": map[string]any{"drink_input": map[string]any{"type": "plain_text_input", "value": ""}},
		}}},
	}}
	if resp, body := postJSON(t, srv.URL()+"/_standin/interaction", submit); resp.StatusCode != http.StatusOK {
		t.Fatalf("first submit = %d %s", resp.StatusCode, body)
	}
	v := srv.Views("U1")[0]
	if v.Errors["drink"] != "Pick a drink" || v.Closed {
		t.Errorf("after errors answer: %+v", v)
	}
	mu.Lock()
	cb := got[0]
	mu.Unlock()
	if cb.View.ID != view.ID || cb.View.CallbackID != "order_modal" || cb.View.PrivateMetadata != `{"run":"r1"}` || cb.View.Hash == "" ||
		cb.View.State == nil || cb.View.State.Values["drink"]["drink_input"].Type != "plain_text_input" {
		t.Errorf("submitted view = %+v", cb.View)
	}

	// Without view.id the user's top modal is submitted; an empty 200 closes it.
	submit["payload"].(map[string]any)["view"] = map[string]any{"state": map[string]any{"values": map[string]any{}}}
	if resp, body := postJSON(t, srv.URL()+"/_standin/interaction", submit); resp.StatusCode != http.StatusOK {
		t.Fatalf("second submit = %d %s", resp.StatusCode, body)
	}
	if v := srv.Views("U1")[0]; !v.Closed {
		t.Errorf("view not closed: %+v", v)
	}
}

func TestStateEndpoint(t *testing.T) {
	srv := slackstandin.NewTestServer(t, slackstandin.Options{})
	if _, _, err := newClient(srv).PostMessage("C0LOCAL", slack.MsgOptionText("hello", false)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(srv.URL() + "/_standin/state?channel=C0LOCAL")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st struct {
		Channels map[string][]slackstandin.Message `json:"channels"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	if m := st.Channels["C0LOCAL"]; len(m) != 1 || m[0].Text != "hello" {
		t.Errorf("state = %+v", st)
	}
}
