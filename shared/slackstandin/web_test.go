package slackstandin_test

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/coffeebuddy/coffeebuddy/shared/slackstandin"
)

func getBody(t *testing.T, u string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

type uiState struct {
	Version       uint64 `json:"version"`
	As            string `json:"as"`
	AsName        string `json:"as_name"`
	Users         []slackstandin.User
	Conversations []struct {
		ID, Label, Kind string
		Count           int
	} `json:"conversations"`
	Channel struct{ ID, Label string } `json:"channel"`
	HTML    string                     `json:"channel_html"`
	Modal   *struct {
		ID, Hash, HTML string
		Errors         map[string]string
	} `json:"modal"`
	ModalsHTML string `json:"modals_html"`
}

func getUI(t *testing.T, srv *slackstandin.Server, as, channel string) uiState {
	t.Helper()
	resp, body := getBody(t, srv.URL()+"/_standin/ui?as="+url.QueryEscape(as)+"&channel="+url.QueryEscape(channel))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /_standin/ui = %d %s", resp.StatusCode, body)
	}
	var st uiState
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatal(err)
	}
	return st
}

func TestPageAndAssets(t *testing.T) {
	srv := slackstandin.NewTestServer(t, slackstandin.Options{})
	resp, page := getBody(t, srv.URL()+"/")
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET / = %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") {
		t.Errorf("Content-Security-Policy = %q", csp)
	}
	for _, want := range []string{`<script src="/_standin/web/app.js" defer>`, `<select id="as">`, `<label for="compose"`, `id="composer"`} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	for file, ctype := range map[string]string{"app.js": "text/javascript", "app.css": "text/css"} {
		resp, body := getBody(t, srv.URL()+"/_standin/web/"+file)
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), ctype) || len(body) < 1000 {
			t.Errorf("GET %s = %d %s (%d bytes)", file, resp.StatusCode, resp.Header.Get("Content-Type"), len(body))
		}
	}
}

// TestUIShowsEachPersonTheirOwn: the channel to all, an ephemeral and a DM
// only to whom they are for, everything to the watch mode, labelled; and
// all of it escaped.
func TestUIShowsEachPersonTheirOwn(t *testing.T) {
	srv := slackstandin.NewTestServer(t, slackstandin.Options{Users: map[string]string{"U1": "alice", "U2": "bob"}})
	api := newClient(srv)
	ctx := t.Context()
	_, ts, err := api.PostMessageContext(ctx, "C0LOCAL", slack.MsgOptionText(`<script>alert("run")</script>`, true))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := api.PostMessageContext(ctx, "C0LOCAL", slack.MsgOptionTS(ts),
		slack.MsgOptionBlocks(section(`<script>alert("blocks")</script> for <@U1> :coffee:`))); err != nil {
		t.Fatal(err)
	}
	if _, err := api.PostEphemeralContext(ctx, "C0LOCAL", "U1", slack.MsgOptionText("only for alice", false)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := api.PostMessageContext(ctx, "U2", slack.MsgOptionText("You're on coffee duty", false)); err != nil {
		t.Fatal(err)
	}

	alice := getUI(t, srv, "U1", "")
	if alice.As != "U1" || alice.AsName != "alice" || alice.Channel.ID != "C0LOCAL" || alice.Channel.Label != "#coffee" {
		t.Errorf("alice's screen: as %q %q in %+v", alice.As, alice.AsName, alice.Channel)
	}
	for _, want := range []string{
		`&lt;script&gt;alert(&#34;run&#34;)&lt;/script&gt;`,
		`&lt;script&gt;alert(&#34;blocks&#34;)&lt;/script&gt; for <span class="mention me" data-user="U1">@alice</span>`,
		`title=":coffee:">☕</span>`, `class="thread"`, `only for alice`, `Only visible to you`,
	} {
		if !strings.Contains(alice.HTML, want) {
			t.Errorf("alice's #coffee lacks %s:\n%s", want, alice.HTML)
		}
	}
	if strings.Contains(alice.HTML, "<script") {
		t.Errorf("unescaped script:\n%s", alice.HTML)
	}
	var convs []string
	for _, c := range alice.Conversations {
		convs = append(convs, c.ID+" "+c.Label)
	}
	if strings.Join(convs, ", ") != "C0LOCAL #coffee, DU1 coffeebuddy" {
		t.Errorf("alice's sidebar = %v (her DM, not bob's)", convs)
	}

	bob := getUI(t, srv, "U2", "")
	if strings.Contains(bob.HTML, "only for alice") {
		t.Error("bob sees alice's ephemeral")
	}
	if dm := getUI(t, srv, "U2", "DU2"); !strings.Contains(dm.HTML, "You&#39;re on coffee duty") || dm.Channel.ID != "DU2" {
		t.Errorf("bob's DM = %s", dm.HTML)
	}
	if other := getUI(t, srv, "U1", "DU2"); other.Channel.ID != "C0LOCAL" {
		t.Errorf("alice could open bob's DM: %+v", other.Channel)
	}

	watch := getUI(t, srv, "", "")
	if !strings.Contains(watch.HTML, "Only visible to @alice") || watch.As != "" || strings.Contains(watch.HTML, `<button type="button" class="btn" data-action-id`) {
		t.Errorf("watch mode:\n%s", watch.HTML)
	}
	var dms []string
	for _, c := range watch.Conversations {
		dms = append(dms, c.Label)
	}
	if !strings.Contains(strings.Join(dms, ","), "coffeebuddy ↔ @bob") {
		t.Errorf("watch sidebar = %v", dms)
	}
}

// TestEventsStream: a change to the state is pushed with a new version;
// Close ends the stream (so the server's shutdown does not wait on it).
func TestEventsStream(t *testing.T) {
	srv := slackstandin.New(slackstandin.Options{})
	if err := srv.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(srv.URL() + "/_standin/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	events := make(chan string, 16)
	go func() {
		defer close(events)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				events <- v
			}
		}
	}()
	next := func() string {
		select {
		case v, ok := <-events:
			if !ok {
				return "closed"
			}
			return v
		case <-time.After(10 * time.Second):
			t.Fatal("no event in 10s")
		}
		return ""
	}
	first := next()
	if _, err := srv.AddUser("", "Erin"); err != nil {
		t.Fatal(err)
	}
	if second := next(); second == first {
		t.Errorf("version did not change: %s then %s", first, second)
	}
	closed := make(chan error, 1)
	go func() { closed <- srv.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Errorf("Close: %v", err)
		}
	case <-time.After(4 * time.Second):
		t.Fatal("Close waited on the open event stream")
	}
	for v := next(); v != "closed"; v = next() {
	}
}

func TestDirectory(t *testing.T) {
	var srv *slackstandin.Server
	ing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) }))
	t.Cleanup(ing.Close)
	srv = slackstandin.NewTestServer(t, slackstandin.Options{Users: map[string]string{"U1": "alice"}, CommandsURL: ing.URL})

	// A command's user_name is the user's name from then on; a configured
	// name stays.
	for _, c := range []slackstandin.Command{
		{Command: "/coffee", UserID: "U7", UserName: "grace"},
		{Command: "/coffee", UserID: "U1", UserName: "not-alice"},
	} {
		if _, err := srv.RunCommand(t.Context(), c); err != nil {
			t.Fatal(err)
		}
	}
	u, err := srv.AddUser("", "Erin O'Neil")
	if err != nil || u.ID != "U0ERINONEIL" || u.Name != "Erin O'Neil" {
		t.Fatalf("AddUser = %+v, %v", u, err)
	}
	if u2, _ := srv.AddUser("", "erin o neil"); u2.ID != "U0ERINONEIL2" {
		t.Errorf("second Erin got %s", u2.ID)
	}
	if _, err := srv.AddUser("", "  !!  "); err == nil {
		t.Error("a name without letters was accepted")
	}
	if _, err := srv.AddUser("U1", "dup"); err == nil {
		t.Error("a taken id was accepted")
	}
	var got []string
	for _, u := range srv.Users() {
		got = append(got, u.ID+"="+u.Name)
	}
	if want := "U1=alice,U0ERINONEIL2=erin o neil,U0ERINONEIL=Erin O'Neil,U7=grace"; strings.Join(got, ",") != want {
		t.Errorf("Users = %s, want %s", strings.Join(got, ","), want)
	}
	info, err := newClient(srv).GetUserInfoContext(t.Context(), "U7")
	if err != nil || info.Profile.DisplayName != "grace" {
		t.Errorf("users.info U7 = %+v, %v", info, err)
	}

	id, err := srv.AddChannel("#Tea-Time")
	if err != nil || id != "C0TEATIME" {
		t.Fatalf("AddChannel = %s, %v", id, err)
	}
	if again, _ := srv.AddChannel("tea-time"); again != id {
		t.Errorf("the same name made another channel: %s", again)
	}
	ui := getUI(t, srv, "U7", id)
	if ui.Channel.ID != id || ui.Channel.Label != "#tea-time" {
		t.Errorf("grace in the new channel: %+v", ui.Channel)
	}
	if !strings.Contains(ui.HTML, "Nothing here yet") {
		t.Errorf("an empty channel shows %s", ui.HTML)
	}
	// Her own command shows to her (and the watch mode) only.
	if c := getUI(t, srv, "U7", ""); !strings.Contains(c.HTML, `<span class="who">You</span> typed <code>/coffee</code>`) {
		t.Errorf("grace's own command is not shown to her:\n%s", c.HTML)
	}
	if c := getUI(t, srv, "U1", ""); strings.Contains(c.HTML, "/coffee") && strings.Contains(c.HTML, "grace") {
		t.Errorf("alice sees grace's command:\n%s", c.HTML)
	}
}

// playIngress records what the page's actions make the stand-in send,
// checks it is signed like Slack's, and answers with the next of answers.
type playIngress struct {
	mu       sync.Mutex
	payloads []map[string]any
	answers  []string
}

func (p *playIngress) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	sv, err := slack.NewSecretsVerifier(r.Header, slackstandin.DefaultSigningSecret)
	if err == nil {
		_, _ = sv.Write(body)
		err = sv.Ensure()
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	form, _ := url.ParseQuery(string(body))
	var payload map[string]any
	if err := json.Unmarshal([]byte(form.Get("payload")), &payload); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	p.mu.Lock()
	p.payloads = append(p.payloads, payload)
	answer := ""
	if len(p.answers) > 0 {
		answer, p.answers = p.answers[0], p.answers[1:]
	}
	p.mu.Unlock()
	if answer != "" {
		w.Header().Set("Content-Type", "application/json")
	}
	_, _ = io.WriteString(w, answer)
}

func (p *playIngress) last(t *testing.T) map[string]any {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.payloads) == 0 {
		t.Fatal("nothing reached the app")
	}
	return p.payloads[len(p.payloads)-1]
}

func (p *playIngress) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.payloads)
}

func postPlay(t *testing.T, srv *slackstandin.Server, path string, body any) (int, map[string]any) {
	t.Helper()
	resp, raw := postJSON(t, srv.URL()+path, body)
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	return resp.StatusCode, out
}

func TestPlayClickSubmitClose(t *testing.T) {
	ing := &playIngress{}
	is := httptest.NewServer(ing)
	t.Cleanup(is.Close)
	srv := slackstandin.NewTestServer(t, slackstandin.Options{
		Users: map[string]string{"U1": "alice", "U2": "bob"}, InteractionsURL: is.URL,
	})
	api := newClient(srv)
	ctx := t.Context()
	btn := slack.NewButtonBlockElement("order_add", "run-1", slack.NewTextBlockObject(slack.PlainTextType, "Add my order", true, false)).WithStyle(slack.StylePrimary)
	_, ts, err := api.PostMessageContext(ctx, "C0LOCAL", slack.MsgOptionText("run", false),
		slack.MsgOptionBlocks(slack.NewActionBlock("run_actions", btn)))
	if err != nil {
		t.Fatal(err)
	}

	// A click: the payload Slack would send, built from the message.
	if status, out := postPlay(t, srv, "/_standin/play/click", slackstandin.ClickRequest{UserID: "U1", ChannelID: "C0LOCAL", MessageTS: ts, ActionID: "order_add"}); status != http.StatusOK {
		t.Fatalf("click = %d %v", status, out)
	}
	p := ing.last(t)
	act := p["actions"].([]any)[0].(map[string]any)
	if p["type"] != "block_actions" || p["user"].(map[string]any)["name"] != "alice" || p["trigger_id"] == "" ||
		!strings.HasPrefix(p["response_url"].(string), srv.URL()) || p["message"].(map[string]any)["ts"] != ts ||
		act["value"] != "run-1" || act["block_id"] != "run_actions" || act["style"] != "primary" ||
		act["text"].(map[string]any)["text"] != "Add my order" {
		t.Errorf("block_actions payload = %v", p)
	}
	if ui := getUI(t, srv, "U1", ""); !strings.Contains(ui.HTML, `clicked <code>Add my order</code>`) {
		t.Errorf("alice's click is not shown to her:\n%s", ui.HTML)
	}
	// A script naming only the action gets the rest filled in from the
	// message, as Slack sends it.
	if resp, body := postJSON(t, srv.URL()+"/_standin/interaction", map[string]any{"payload": map[string]any{
		"type": "block_actions", "user": map[string]any{"id": "U2"},
		"container": map[string]any{"type": "message", "message_ts": ts, "channel_id": "C0LOCAL"},
		"actions":   []any{map[string]any{"action_id": "order_add", "block_id": "run_actions", "value": "run-1"}},
	}}); resp.StatusCode != http.StatusOK {
		t.Fatalf("interaction = %d %s", resp.StatusCode, body)
	}
	if act := ing.last(t)["actions"].([]any)[0].(map[string]any); act["type"] != "button" || act["text"].(map[string]any)["text"] != "Add my order" {
		t.Errorf("filled action = %v", act)
	}
	if ui := getUI(t, srv, "U2", ""); !strings.Contains(ui.HTML, `clicked <code>Add my order</code>`) {
		t.Errorf("bob's click is not shown to him by its label:\n%s", ui.HTML)
	}
	// Someone else's ephemeral is not theirs to click.
	ephTS, err := api.PostEphemeralContext(ctx, "C0LOCAL", "U2", slack.MsgOptionBlocks(slack.NewActionBlock("run_actions", btn)))
	if err != nil {
		t.Fatal(err)
	}
	if status, _ := postPlay(t, srv, "/_standin/play/click", slackstandin.ClickRequest{UserID: "U1", ChannelID: "C0LOCAL", MessageTS: ephTS, ActionID: "order_add"}); status != http.StatusForbidden {
		t.Errorf("clicking bob's ephemeral as alice = %d", status)
	}
	if status, _ := postPlay(t, srv, "/_standin/play/click", slackstandin.ClickRequest{UserID: "U2", ChannelID: "C0LOCAL", MessageTS: ephTS, ActionID: "order_add"}); status != http.StatusOK {
		t.Errorf("bob clicking his ephemeral = %d", status)
	}
	if c := ing.last(t)["container"].(map[string]any); c["is_ephemeral"] != true {
		t.Errorf("container = %v", c)
	}

	// The real order form.
	form, err := os.ReadFile("../blocks/testdata/order_modal_empty.golden")
	if err != nil {
		t.Fatal(err)
	}
	code, res := rawCall(t, srv, "views.open", "application/json", "Bearer "+srv.BotToken(),
		`{"trigger_id":"`+srv.NewTriggerID("U1")+`","view":`+string(form)+`}`)
	if code != http.StatusOK || res["ok"] != true {
		t.Fatalf("views.open = %v", res)
	}
	viewID := res["view"].(map[string]any)["id"].(string)
	if ui := getUI(t, srv, "U1", ""); ui.Modal == nil || ui.Modal.ID != viewID || !strings.Contains(ui.Modal.HTML, `maxlength="200"`) {
		t.Fatalf("alice's modal = %+v", ui.Modal)
	}
	if ui := getUI(t, srv, "U2", ""); ui.Modal != nil {
		t.Errorf("bob sees alice's modal")
	}

	sent := ing.count()
	long := strings.Repeat("x", 201)
	// Slack's client checks: nothing reaches the app.
	status, out := postPlay(t, srv, "/_standin/play/submit", slackstandin.SubmitRequest{UserID: "U1", ViewID: viewID,
		Values: map[string]json.RawMessage{"size": json.RawMessage(`"large"`), "customizations": json.RawMessage(`"` + long + `"`)}})
	result, _ := out["result"].(map[string]any)
	if errs, _ := result["errors"].(map[string]any); status != http.StatusOK || result["checked_by"] != "client" ||
		errs["drink"] != "Please complete this required field." || !strings.Contains(errs["customizations"].(string), "no more than 200") {
		t.Errorf("client-checked submit = %d %v", status, out)
	}
	if ing.count() != sent {
		t.Error("a submission Slack's client refuses reached the app")
	}
	// Skipping them, the app's own errors show under the field.
	ing.answers = []string{`{"response_action":"errors","errors":{"customizations":"Customizations can be at most 200 characters (this is 201)."}}`, ``}
	status, out = postPlay(t, srv, "/_standin/play/submit", slackstandin.SubmitRequest{UserID: "U1", ViewID: viewID, SkipClientChecks: true,
		Values: map[string]json.RawMessage{"drink": json.RawMessage(`"latte"`), "size": json.RawMessage(`"large"`), "customizations": json.RawMessage(`"` + long + `"`)}})
	result, _ = out["result"].(map[string]any)
	if status != http.StatusOK || result["checked_by"] != "app" || result["closed"] != false {
		t.Errorf("app-checked submit = %d %v", status, out)
	}
	state := ing.last(t)["view"].(map[string]any)["state"].(map[string]any)["values"].(map[string]any)
	drink := state["drink"].(map[string]any)["drink"].(map[string]any)
	if drink["type"] != "static_select" || drink["selected_option"].(map[string]any)["value"] != "latte" ||
		drink["selected_option"].(map[string]any)["text"].(map[string]any)["text"] != "Latte" ||
		state["customizations"].(map[string]any)["customizations"].(map[string]any)["value"] != long {
		t.Errorf("view.state.values = %v", state)
	}
	if ui := getUI(t, srv, "U1", ""); ui.Modal == nil || !strings.Contains(ui.Modal.Errors["customizations"], "at most 200") ||
		!strings.Contains(ui.Modal.HTML, "this is 201") {
		t.Errorf("the app's error is not under the field: %+v", ui.Modal)
	}
	// Accepted: the view closes; an empty optional field is null.
	status, out = postPlay(t, srv, "/_standin/play/submit", slackstandin.SubmitRequest{UserID: "U1", ViewID: viewID,
		Values: map[string]json.RawMessage{"drink": json.RawMessage(`"latte"`), "size": json.RawMessage(`"large"`), "customizations": json.RawMessage(`null`)}})
	if result, _ := out["result"].(map[string]any); status != http.StatusOK || result["closed"] != true {
		t.Errorf("accepted submit = %d %v", status, out)
	}
	if v := ing.last(t)["view"].(map[string]any)["state"].(map[string]any)["values"].(map[string]any)["customizations"].(map[string]any)["customizations"].(map[string]any); v["value"] != nil {
		t.Errorf("empty customization sent as %v", v)
	}
	if ui := getUI(t, srv, "U1", ""); ui.Modal != nil {
		t.Error("the modal is still open")
	}
	if status, _ := postPlay(t, srv, "/_standin/play/submit", slackstandin.SubmitRequest{UserID: "U1", ViewID: viewID}); status != http.StatusBadRequest {
		t.Errorf("submitting a closed view = %d", status)
	}

	// Cancel: closed on screen; the app hears of it only if it asked.
	code, res = rawCall(t, srv, "views.open", "application/json", "Bearer "+srv.BotToken(),
		`{"trigger_id":"`+srv.NewTriggerID("U2")+`","view":`+strings.Replace(string(form), `"type": "modal",`, `"type": "modal", "notify_on_close": true,`, 1)+`}`)
	if res["ok"] != true {
		t.Fatalf("views.open = %d %v", code, res)
	}
	second := res["view"].(map[string]any)["id"].(string)
	if status, _ := postPlay(t, srv, "/_standin/play/close", map[string]string{"user_id": "U1", "view_id": second}); status != http.StatusForbidden {
		t.Errorf("alice closing bob's modal = %d", status)
	}
	if status, _ := postPlay(t, srv, "/_standin/play/close", map[string]string{"user_id": "U2", "view_id": second}); status != http.StatusOK {
		t.Errorf("close = %d", status)
	}
	if p := ing.last(t); p["type"] != "view_closed" {
		t.Errorf("last payload = %v, want view_closed", p["type"])
	}
	if v := srv.Views("U2"); len(v) != 1 || !v[0].Closed {
		t.Errorf("bob's view = %+v", v)
	}
}

// TestCommandShownOnlyWhereSlackShowsIt: a command is the typer's muted
// line, unless the app answers it in_channel; then Slack shows the
// command to the channel as the user's message, and so does the page.
func TestCommandShownOnlyWhereSlackShowsIt(t *testing.T) {
	answer := `{"response_type":"ephemeral","text":"just you"}`
	ing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, answer)
	}))
	t.Cleanup(ing.Close)
	srv := slackstandin.NewTestServer(t, slackstandin.Options{Users: map[string]string{"U1": "alice", "U2": "bob"}, CommandsURL: ing.URL})
	if _, err := srv.RunCommand(t.Context(), slackstandin.Command{Command: "/coffee-history", UserID: "U1"}); err != nil {
		t.Fatal(err)
	}
	answer = `{"response_type":"in_channel","text":"for everyone"}`
	if _, err := srv.RunCommand(t.Context(), slackstandin.Command{Command: "/coffee", Text: "5", UserID: "U1"}); err != nil {
		t.Fatal(err)
	}
	bob := getUI(t, srv, "U2", "").HTML
	for _, want := range []string{`<span class="author">alice</span>`, `<span class="typed-command">/coffee 5</span>`, "for everyone"} {
		if !strings.Contains(bob, want) {
			t.Errorf("bob's #coffee lacks %s:\n%s", want, bob)
		}
	}
	for _, not := range []string{"/coffee-history", "just you"} {
		if strings.Contains(bob, not) {
			t.Errorf("bob sees %s:\n%s", not, bob)
		}
	}
	if alice := getUI(t, srv, "U1", "").HTML; !strings.Contains(alice, `typed <code>/coffee-history</code>`) || !strings.Contains(alice, "just you") {
		t.Errorf("alice's #coffee:\n%s", alice)
	}
}
