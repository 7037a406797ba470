package slackstandin_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/coffeebuddy/coffeebuddy/shared/logbuf"
	"github.com/coffeebuddy/coffeebuddy/shared/slackstandin"
)

var tsPattern = regexp.MustCompile(`^\d{10}\.\d{6}$`)

func newClient(srv *slackstandin.Server) *slack.Client {
	return slack.New(srv.BotToken(), slack.OptionAPIURL(srv.APIURL()))
}

// rawCall posts body to an API method and decodes the JSON answer.
func rawCall(t *testing.T, srv *slackstandin.Server, method, contentType, auth, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.APIURL()+method, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("decoding %s answer: %v", method, err)
	}
	return resp.StatusCode, out
}

func section(text string) slack.Block {
	return slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, text, false, false), nil, nil)
}

func TestPostUpdateThreadReply(t *testing.T) {
	srv := slackstandin.NewTestServer(t, slackstandin.Options{})
	api := newClient(srv)
	ctx := t.Context()

	ch, ts, err := api.PostMessageContext(ctx, "C0LOCAL",
		slack.MsgOptionText("Coffee run started", false),
		slack.MsgOptionBlocks(section("*Coffee run* by <@U1>")))
	if err != nil {
		t.Fatalf("PostMessage: %v", err)
	}
	if ch != "C0LOCAL" || !tsPattern.MatchString(ts) {
		t.Fatalf("PostMessage = %q, %q; want C0LOCAL and a Slack ts", ch, ts)
	}

	_, uts, text, err := api.UpdateMessageContext(ctx, "C0LOCAL", ts, slack.MsgOptionText("Coffee run: 1 order", false))
	if err != nil {
		t.Fatalf("UpdateMessage: %v", err)
	}
	if uts != ts || text != "Coffee run: 1 order" {
		t.Fatalf("UpdateMessage = %q, %q; want ts %q and the new text", uts, text, ts)
	}

	_, rts, err := api.PostMessageContext(ctx, "C0LOCAL", slack.MsgOptionText("Runner: <@U2>", false), slack.MsgOptionTS(ts))
	if err != nil {
		t.Fatalf("thread reply: %v", err)
	}
	if rts <= ts {
		t.Fatalf("reply ts %q not after parent ts %q", rts, ts)
	}

	msgs := srv.Messages("C0LOCAL")
	if len(msgs) != 2 {
		t.Fatalf("Messages = %d messages, want 2: %+v", len(msgs), msgs)
	}
	parent, reply := msgs[0], msgs[1]
	if parent.TS != ts || parent.Text != "Coffee run: 1 order" || !parent.Edited || parent.ThreadTS != "" || parent.User != slackstandin.BotUserID {
		t.Errorf("parent = %+v", parent)
	}
	// chat.update without blocks keeps the previous blocks, as Slack does.
	var blocks []map[string]any
	if err := json.Unmarshal(parent.Blocks, &blocks); err != nil || len(blocks) != 1 || blocks[0]["type"] != "section" {
		t.Errorf("parent blocks = %s (%v)", parent.Blocks, err)
	}
	if reply.TS != rts || reply.ThreadTS != ts || reply.Text != "Runner: <@U2>" {
		t.Errorf("reply = %+v", reply)
	}
	if got := srv.Thread("C0LOCAL", ts); len(got) != 1 || got[0].TS != rts {
		t.Errorf("Thread = %+v", got)
	}

	// An update with an empty blocks array removes the blocks.
	if _, _, _, err := api.UpdateMessageContext(ctx, "C0LOCAL", ts, slack.MsgOptionText("closed", false), slack.MsgOptionBlocks()); err != nil {
		t.Fatal(err)
	}

	_, _, _, err = api.UpdateMessageContext(ctx, "C0LOCAL", "1234567890.000001", slack.MsgOptionText("x", false))
	if err == nil || err.Error() != "message_not_found" {
		t.Errorf("update of unknown ts: err = %v, want message_not_found", err)
	}

	if calls := srv.Calls("chat.update"); len(calls) != 3 || calls[0].Params["ts"] != ts || calls[0].Status != http.StatusOK {
		t.Errorf("chat.update calls = %+v", calls)
	}
	if n := len(srv.Calls("")); n != 5 {
		t.Errorf("all calls = %d, want 5", n)
	}
}

func TestPostMessageErrors(t *testing.T) {
	srv := slackstandin.NewTestServer(t, slackstandin.Options{})
	auth := "Bearer " + srv.BotToken()
	tests := []struct {
		name, contentType, body, want string
	}{
		{"no text", "application/json", `{"channel":"C0LOCAL"}`, "no_text"},
		{"no channel", "application/json", `{"text":"hi"}`, "channel_not_found"},
		{"bad blocks", "application/x-www-form-urlencoded", `channel=C0LOCAL&blocks=%7Bnope`, "invalid_blocks"},
		{"bad json", "application/json", `{"channel":`, "invalid_json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, out := rawCall(t, srv, "chat.postMessage", tt.contentType, auth, tt.body)
			if status != http.StatusOK || out["ok"] != false || out["error"] != tt.want {
				t.Errorf("answer = %d %v, want 200 error %q", status, out, tt.want)
			}
		})
	}
	if msgs := srv.Messages("C0LOCAL"); len(msgs) != 0 {
		t.Errorf("failed posts stored messages: %+v", msgs)
	}
}

// JSON bodies carry blocks as JSON, forms carry them as a JSON string; both
// land in Params as JSON text and in the message verbatim.
func TestJSONAndFormBodies(t *testing.T) {
	srv := slackstandin.NewTestServer(t, slackstandin.Options{})
	auth := "Bearer " + srv.BotToken()
	blocks := `[{"type":"section","text":{"type":"mrkdwn","text":"hi"}}]`

	_, out := rawCall(t, srv, "chat.postMessage", "application/json; charset=utf-8", auth,
		`{"channel":"C0LOCAL","blocks":`+blocks+`,"unfurl_links":false,"link_names":1}`)
	if out["ok"] != true {
		t.Fatalf("JSON post: %v", out)
	}
	form := url.Values{"channel": {"C0LOCAL"}, "blocks": {blocks}, "token": {srv.BotToken()}}
	_, out = rawCall(t, srv, "chat.postMessage", "application/x-www-form-urlencoded", "", form.Encode())
	if out["ok"] != true {
		t.Fatalf("form post: %v", out)
	}
	calls := srv.Calls("chat.postMessage")
	if len(calls) != 2 {
		t.Fatalf("calls = %d", len(calls))
	}
	for i, c := range calls {
		if c.Params["blocks"] != blocks || c.Params["channel"] != "C0LOCAL" {
			t.Errorf("call %d params = %v", i, c.Params)
		}
	}
	if calls[0].Params["unfurl_links"] != "false" || calls[0].Params["link_names"] != "1" {
		t.Errorf("JSON scalars rendered as %q, %q", calls[0].Params["unfurl_links"], calls[0].Params["link_names"])
	}
	for _, m := range srv.Messages("C0LOCAL") {
		if string(m.Blocks) != blocks {
			t.Errorf("stored blocks = %s, want %s", m.Blocks, blocks)
		}
	}
}

func TestAuth(t *testing.T) {
	srv := slackstandin.NewTestServer(t, slackstandin.Options{BotToken: "xoxb-right"})
	tests := []struct {
		name, token, want string
	}{
		{"right token", "xoxb-right", ""},
		{"wrong token", "xoxb-wrong", "invalid_auth"},
		{"no token", "", "not_authed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := slack.New(tt.token, slack.OptionAPIURL(srv.APIURL()))
			_, _, err := api.PostMessageContext(t.Context(), "C0LOCAL", slack.MsgOptionText("hello", false))
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.want {
				t.Errorf("PostMessage err = %q, want %q", got, tt.want)
			}
			// JSON methods authenticate with the Authorization header.
			_, err = api.OpenViewContext(t.Context(), "trigger", slack.ModalViewRequest{
				Type: slack.VTModal, Title: slack.NewTextBlockObject(slack.PlainTextType, "Order", false, false),
			})
			got = ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.want {
				t.Errorf("OpenView err = %q, want %q", got, tt.want)
			}
		})
	}
	// Slack ignores a token inside a JSON body.
	_, out := rawCall(t, srv, "chat.postMessage", "application/json", "", `{"token":"xoxb-right","channel":"C0LOCAL","text":"x"}`)
	if out["error"] != "not_authed" {
		t.Errorf("JSON body token: %v, want not_authed", out)
	}
	_, out = rawCall(t, srv, "auth.test", "", "Basic eG94Yi1yaWdodA==", "")
	if out["error"] != "invalid_auth" {
		t.Errorf("Basic auth: %v, want invalid_auth", out)
	}
	if msgs := srv.Messages("C0LOCAL"); len(msgs) != 1 {
		t.Errorf("stored %d messages, want only the authenticated one", len(msgs))
	}
}

// Error and fault bodies are byte for byte what Slack sends.
func TestWireBodies(t *testing.T) {
	srv := slackstandin.NewTestServer(t, slackstandin.Options{})
	srv.SetFault("chat.update", func(slackstandin.Call) (int, time.Duration, bool) {
		return http.StatusTooManyRequests, 3 * time.Second, true
	})
	tests := []struct {
		name, method, auth string
		status             int
		retryAfter, body   string
	}{
		{"invalid auth", "auth.test", "Bearer xoxb-wrong", 200, "", `{"ok":false,"error":"invalid_auth"}`},
		{"unknown method", "nope.nope", "Bearer " + srv.BotToken(), 200, "", `{"ok":false,"error":"unknown_method"}`},
		{"rate limited", "chat.update", "Bearer " + srv.BotToken(), 429, "3", `{"ok":false,"error":"ratelimited"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.APIURL()+tt.method, strings.NewReader(`{"channel":"C0LOCAL","ts":"1.2","text":"x"}`))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", tt.auth)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.status || resp.Header.Get("Retry-After") != tt.retryAfter || string(body) != tt.body ||
				!strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
				t.Errorf("got %d Retry-After=%q %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
			}
		})
	}
}

func TestUnknownMethod(t *testing.T) {
	srv := slackstandin.NewTestServer(t, slackstandin.Options{})
	status, out := rawCall(t, srv, "reactions.add", "application/x-www-form-urlencoded", "Bearer "+srv.BotToken(), "name=coffee")
	if status != http.StatusOK || out["ok"] != false || out["error"] != "unknown_method" {
		t.Errorf("answer = %d %v", status, out)
	}
	if c := srv.Calls("reactions.add"); len(c) != 1 || c[0].Params["name"] != "coffee" {
		t.Errorf("unknown method not recorded: %+v", c)
	}
}

func TestAuthTestUsersInfoConversationsInfo(t *testing.T) {
	srv := slackstandin.NewTestServer(t, slackstandin.Options{Users: map[string]string{"U1": "alice"}})
	api := newClient(srv)
	ctx := t.Context()

	at, err := api.AuthTestContext(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if at.UserID != slackstandin.BotUserID || at.BotID != slackstandin.BotID || at.TeamID != slackstandin.DefaultTeamID || at.URL != srv.URL()+"/" {
		t.Errorf("auth.test = %+v", at)
	}

	for _, tt := range []struct{ id, want string }{{"U1", "alice"}, {"U9", "U9"}} {
		u, err := api.GetUserInfoContext(ctx, tt.id)
		if err != nil {
			t.Fatal(err)
		}
		if u.ID != tt.id || u.Profile.DisplayName != tt.want || u.RealName != tt.want {
			t.Errorf("users.info %s = %+v", tt.id, u)
		}
	}

	tests := []struct {
		id              string
		isIM, isChannel bool
		name, user      string
	}{
		{"C0LOCAL", false, true, "coffee", ""},
		{"CRANDOM", false, true, "crandom", ""},
		{"DU1", true, false, "", "U1"},
	}
	for _, tt := range tests {
		c, err := api.GetConversationInfoContext(ctx, &slack.GetConversationInfoInput{ChannelID: tt.id})
		if err != nil {
			t.Fatal(err)
		}
		if c.ID != tt.id || c.IsIM != tt.isIM || c.IsChannel != tt.isChannel || c.Name != tt.name || c.User != tt.user {
			t.Errorf("conversations.info %s = id %q im %v channel %v name %q user %q", tt.id, c.ID, c.IsIM, c.IsChannel, c.Name, c.User)
		}
	}
}

func TestConversationsOpenStableDM(t *testing.T) {
	srv := slackstandin.NewTestServer(t, slackstandin.Options{Users: map[string]string{"U1": "alice"}})
	api := newClient(srv)
	tests := []struct {
		user, want  string
		alreadyOpen bool
	}{
		{"U1", "DU1", false},
		{"U2", "DU2", false},
		{"U1", "DU1", true},
		{"U2", "DU2", true},
	}
	for _, tt := range tests {
		ch, noOp, already, err := api.OpenConversationContext(t.Context(), &slack.OpenConversationParameters{Users: []string{tt.user}})
		if err != nil {
			t.Fatal(err)
		}
		if ch.ID != tt.want || !ch.IsIM || ch.User != tt.user || already != tt.alreadyOpen || noOp != tt.alreadyOpen {
			t.Errorf("open %s = %q im=%v user=%q already=%v", tt.user, ch.ID, ch.IsIM, ch.User, already)
		}
		if srv.DMChannel(tt.user) != tt.want {
			t.Errorf("DMChannel(%s) = %q", tt.user, srv.DMChannel(tt.user))
		}
	}
	if _, _, _, err := api.OpenConversationContext(t.Context(), &slack.OpenConversationParameters{}); err == nil || err.Error() != "users_list_not_supplied" {
		t.Errorf("open without users: %v", err)
	}
	// Posting to a user id lands in the DM, as in Slack.
	ch, _, err := api.PostMessageContext(t.Context(), "U1", slack.MsgOptionText("You're the runner", false))
	if err != nil || ch != "DU1" {
		t.Fatalf("post to U1 = %q, %v", ch, err)
	}
	if m := srv.Messages("DU1"); len(m) != 1 || m[0].Text != "You're the runner" {
		t.Errorf("DM messages = %+v", m)
	}
}

func TestEphemeral(t *testing.T) {
	srv := slackstandin.NewTestServer(t, slackstandin.Options{})
	api := newClient(srv)
	ts, err := api.PostEphemeralContext(t.Context(), "C0LOCAL", "U1", slack.MsgOptionText("Only the runner can complete", false))
	if err != nil || !tsPattern.MatchString(ts) {
		t.Fatalf("PostEphemeral = %q, %v", ts, err)
	}
	eph := srv.Ephemerals("U1")
	if len(eph) != 1 || eph[0].TS != ts || eph[0].Recipient != "U1" || !eph[0].Ephemeral || eph[0].Channel != "C0LOCAL" {
		t.Errorf("Ephemerals = %+v", eph)
	}
	if len(srv.Ephemerals("U2")) != 0 || len(srv.Messages("C0LOCAL")) != 0 {
		t.Error("ephemeral leaked to another user or to the channel")
	}
}

func modal(title string) slack.ModalViewRequest {
	return slack.ModalViewRequest{
		Type:       slack.VTModal,
		Title:      slack.NewTextBlockObject(slack.PlainTextType, title, false, false),
		Submit:     slack.NewTextBlockObject(slack.PlainTextType, "Order", false, false),
		CallbackID: "order_modal",
		Blocks: slack.Blocks{BlockSet: []slack.Block{
			slack.NewInputBlock("drink", slack.NewTextBlockObject(slack.PlainTextType, "Drink", false, false), nil,
				slack.NewPlainTextInputBlockElement(nil, "drink_input")),
		}},
		PrivateMetadata: `{"run":"r1"}`,
	}
}

func TestViews(t *testing.T) {
	srv := slackstandin.NewTestServer(t, slackstandin.Options{Users: map[string]string{"U1": "alice"}})
	api := newClient(srv)
	ctx := t.Context()

	trig := srv.NewTriggerID("U1")
	resp, err := api.OpenViewContext(ctx, trig, modal("Order coffee"))
	if err != nil {
		t.Fatalf("OpenView: %v", err)
	}
	if resp.ID == "" || resp.Title.Text != "Order coffee" || resp.CallbackID != "order_modal" || resp.Hash == "" || resp.RootViewID != resp.ID || resp.PrivateMetadata != `{"run":"r1"}` {
		t.Errorf("OpenView response view = %+v", resp.View)
	}
	if len(resp.Blocks.BlockSet) != 1 || resp.Blocks.BlockSet[0].BlockType() != slack.MBTInput {
		t.Errorf("OpenView blocks = %+v", resp.Blocks.BlockSet)
	}
	calls := srv.Calls("views.open")
	if len(calls) != 1 || calls[0].Params["trigger_id"] != trig || !strings.Contains(calls[0].Params["view"], `"callback_id":"order_modal"`) {
		t.Errorf("views.open calls = %+v", calls)
	}
	views := srv.Views("U1")
	if len(views) != 1 || views[0].ID != resp.ID || views[0].User != "U1" || views[0].TriggerID != trig || views[0].Title != "Order coffee" {
		t.Fatalf("Views = %+v", views)
	}

	// A trigger is exchanged once.
	if _, err := api.OpenViewContext(ctx, trig, modal("Again")); err == nil || err.Error() != "exchanged_trigger_id" {
		t.Errorf("reused trigger: %v", err)
	}
	// Slack's title limit.
	if _, err := api.OpenViewContext(ctx, srv.NewTriggerID("U1"), modal("A title far longer than 24 chars")); err == nil || err.Error() != "invalid_arguments" {
		t.Errorf("long title: %v", err)
	}

	upd, err := api.UpdateViewContext(ctx, modal("Order updated"), "", resp.Hash, resp.ID)
	if err != nil {
		t.Fatalf("UpdateView: %v", err)
	}
	if upd.ID != resp.ID || upd.Title.Text != "Order updated" || upd.Hash == resp.Hash {
		t.Errorf("UpdateView = %+v", upd.View)
	}
	if _, err := api.UpdateViewContext(ctx, modal("x"), "", resp.Hash, resp.ID); err == nil || err.Error() != "hash_conflict" {
		t.Errorf("stale hash: %v", err)
	}
	if _, err := api.UpdateViewContext(ctx, modal("x"), "", "", "V404"); err == nil || err.Error() != "not_found" {
		t.Errorf("unknown view: %v", err)
	}

	pushed, err := api.PushViewContext(ctx, srv.NewTriggerID("U1"), modal("Customize"))
	if err != nil {
		t.Fatalf("PushView: %v", err)
	}
	if pushed.RootViewID != resp.ID || pushed.PreviousViewID != resp.ID {
		t.Errorf("pushed view root %q previous %q, want %q", pushed.RootViewID, pushed.PreviousViewID, resp.ID)
	}
	if v := srv.Views(""); len(v) != 2 || v[1].Method != "views.push" {
		t.Errorf("Views after push = %+v", v)
	}
}

func TestTriggerExpires(t *testing.T) {
	srv := slackstandin.NewTestServer(t, slackstandin.Options{AckTimeout: time.Millisecond})
	trig := srv.NewTriggerID("U1")
	time.Sleep(5 * time.Millisecond) // let the trigger outlive its 1 ms lifetime
	_, err := newClient(srv).OpenViewContext(t.Context(), trig, modal("Order coffee"))
	if err == nil || err.Error() != "expired_trigger_id" {
		t.Errorf("err = %v, want expired_trigger_id", err)
	}
}

func TestFaultInjection(t *testing.T) {
	tests := []struct {
		name       string
		status     int
		retryAfter time.Duration
		check      func(t *testing.T, err error)
	}{
		{"rate limited", http.StatusTooManyRequests, 3 * time.Second, func(t *testing.T, err error) {
			rl, ok := errors.AsType[*slack.RateLimitedError](err)
			if !ok || rl.RetryAfter != 3*time.Second {
				t.Errorf("err = %#v, want *slack.RateLimitedError{RetryAfter: 3s}", err)
			}
		}},
		{"rate limited, fractional retry rounds up", http.StatusTooManyRequests, 1500 * time.Millisecond, func(t *testing.T, err error) {
			rl, ok := errors.AsType[*slack.RateLimitedError](err)
			if !ok || rl.RetryAfter != 2*time.Second {
				t.Errorf("err = %#v, want RetryAfter 2s", err)
			}
		}},
		{"server error", http.StatusInternalServerError, 0, func(t *testing.T, err error) {
			sc, ok := errors.AsType[slack.StatusCodeError](err)
			if !ok || sc.Code != http.StatusInternalServerError {
				t.Errorf("err = %#v, want StatusCodeError 500", err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := slackstandin.NewTestServer(t, slackstandin.Options{})
			api := newClient(srv)
			var seen []slackstandin.Call
			var mu sync.Mutex
			srv.SetFault("chat.postMessage", func(c slackstandin.Call) (int, time.Duration, bool) {
				mu.Lock()
				defer mu.Unlock()
				seen = append(seen, c)
				return tt.status, tt.retryAfter, true
			})
			_, _, err := api.PostMessageContext(t.Context(), "C0LOCAL", slack.MsgOptionText("Coffee?", false))
			tt.check(t, err)
			if msgs := srv.Messages("C0LOCAL"); len(msgs) != 0 {
				t.Errorf("faulted call was applied: %+v", msgs)
			}
			calls := srv.Calls("chat.postMessage")
			if len(calls) != 1 || calls[0].Status != tt.status || calls[0].Params["text"] != "Coffee?" {
				t.Errorf("recorded calls = %+v", calls)
			}
			mu.Lock()
			if len(seen) != 1 || seen[0].Params["channel"] != "C0LOCAL" {
				t.Errorf("fault func saw %+v", seen)
			}
			mu.Unlock()
			// Other methods are unaffected; clearing restores the method.
			if _, err := api.AuthTestContext(t.Context()); err != nil {
				t.Errorf("auth.test with a chat fault: %v", err)
			}
			srv.ClearFaults()
			if _, _, err := api.PostMessageContext(t.Context(), "C0LOCAL", slack.MsgOptionText("Coffee?", false)); err != nil {
				t.Errorf("after ClearFaults: %v", err)
			}
			if n := len(srv.Messages("C0LOCAL")); n != 1 {
				t.Errorf("messages after ClearFaults = %d", n)
			}
		})
	}
}

func TestFailN(t *testing.T) {
	srv := slackstandin.NewTestServer(t, slackstandin.Options{})
	api := newClient(srv)
	srv.SetFault("chat.update", slackstandin.FailN(2, http.StatusTooManyRequests, time.Second))
	_, ts, err := api.PostMessageContext(t.Context(), "C0LOCAL", slack.MsgOptionText("run", false))
	if err != nil {
		t.Fatal(err)
	}
	var statuses []int
	for range 3 {
		_, _, _, err := api.UpdateMessageContext(t.Context(), "C0LOCAL", ts, slack.MsgOptionText("run, 1 order", false))
		if _, ok := errors.AsType[*slack.RateLimitedError](err); !ok && err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range srv.Calls("chat.update") {
		statuses = append(statuses, c.Status)
	}
	if want := []int{429, 429, 200}; !equalInts(statuses, want) {
		t.Errorf("statuses = %v, want %v", statuses, want)
	}
	if m := srv.Messages("C0LOCAL"); m[0].Text != "run, 1 order" {
		t.Errorf("message = %+v", m[0])
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestWaitForCalls(t *testing.T) {
	srv := slackstandin.NewTestServer(t, slackstandin.Options{})
	api := newClient(srv)

	type result struct {
		calls []slackstandin.Call
		err   error
	}
	done := make(chan result, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		calls, err := srv.WaitForCalls(ctx, "chat.postMessage", 3)
		done <- result{calls, err}
	}()

	var wg sync.WaitGroup
	for i := range 3 {
		wg.Go(func() {
			if _, _, err := api.PostMessageContext(context.Background(), "C0LOCAL", slack.MsgOptionText("order "+string(rune('a'+i)), false)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	r := <-done
	if r.err != nil || len(r.calls) != 3 {
		t.Fatalf("WaitForCalls = %d calls, %v", len(r.calls), r.err)
	}
	// State is applied before the call is recorded.
	if n := len(srv.Messages("C0LOCAL")); n != 3 {
		t.Errorf("messages = %d", n)
	}

	// Already satisfied: returns at once.
	if calls, err := srv.WaitForCalls(t.Context(), "", 3); err != nil || len(calls) != 3 {
		t.Errorf("satisfied wait = %d, %v", len(calls), err)
	}
	// Unsatisfied: honours the context.
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	calls, err := srv.WaitForCalls(ctx, "views.open", 1)
	if !errors.Is(err, context.DeadlineExceeded) || len(calls) != 0 {
		t.Errorf("timed-out wait = %d, %v", len(calls), err)
	}

	srv.Reset()
	if len(srv.Calls("")) != 0 || len(srv.Messages("C0LOCAL")) != 0 || len(srv.Channels()) != 0 {
		t.Error("Reset left calls or messages")
	}
}

func TestTranscript(t *testing.T) {
	var buf logbuf.Buffer
	srv := slackstandin.NewTestServer(t, slackstandin.Options{
		Users:      map[string]string{"U1": "alice", "U2": "bob"},
		Transcript: &buf,
	})
	api := newClient(srv)
	ctx := t.Context()

	_, ts, err := api.PostMessageContext(ctx, "C0LOCAL", slack.MsgOptionText("☕ Coffee run by <@U1> &lt;now&gt;", false))
	if err != nil {
		t.Fatal(err)
	}
	steps := []func() error{
		func() error {
			_, _, err := api.PostMessageContext(ctx, "C0LOCAL", slack.MsgOptionText("Runner: <@U2>", false), slack.MsgOptionTS(ts))
			return err
		},
		func() error {
			_, _, _, err := api.UpdateMessageContext(ctx, "C0LOCAL", ts, slack.MsgOptionText("", false),
				slack.MsgOptionBlocks(section("*Coffee run*\n2 orders"), slack.NewContextBlock("", slack.NewTextBlockObject(slack.MarkdownType, "Last call soon", false, false))))
			return err
		},
		func() error {
			_, _, err := api.PostMessageContext(ctx, "U2", slack.MsgOptionText("You're the runner", false))
			return err
		},
		func() error {
			_, err := api.PostEphemeralContext(ctx, "C0LOCAL", "U2", slack.MsgOptionText("Only the runner can complete", false))
			return err
		},
		func() error {
			_, err := api.OpenViewContext(ctx, srv.NewTriggerID("U1"), modal("Order coffee"))
			return err
		},
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	want := []string{
		"[#C0LOCAL] coffeebuddy: ☕ Coffee run by @alice <now>",
		"[#C0LOCAL]   ↳ (thread) coffeebuddy: Runner: @bob",
		"[#C0LOCAL] (edited) coffeebuddy: *Coffee run* / 2 orders / Last call soon",
		"[DM @bob] coffeebuddy: You're the runner",
		"[#C0LOCAL] (only @bob sees) coffeebuddy: Only the runner can complete",
		"[modal for @alice] Order coffee",
	}
	got := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("transcript:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestStartAndClose(t *testing.T) {
	srv := slackstandin.New(slackstandin.Options{})
	if err := srv.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(srv.URL(), "http://127.0.0.1:") || srv.APIURL() != srv.URL()+"/api/" {
		t.Errorf("URL %q APIURL %q", srv.URL(), srv.APIURL())
	}
	if _, err := newClient(srv).AuthTestContext(t.Context()); err != nil {
		t.Errorf("auth.test: %v", err)
	}
	if err := srv.Start("127.0.0.1:0"); err == nil {
		t.Error("second Start succeeded")
	}
	if err := srv.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if _, err := newClient(srv).AuthTestContext(t.Context()); err == nil {
		t.Error("server still answering after Close")
	}
}
