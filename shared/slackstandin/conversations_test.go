package slackstandin_test

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/slack-go/slack"

	"github.com/coffeebuddy/coffeebuddy/shared/slackstandin"
)

// registry is a workspace with one conversation of each kind the
// membership rules tell apart.
var registry = []slackstandin.Conversation{
	{ID: "CPUBOUT", Name: "lobby", Members: []string{"U1"}},
	{ID: "CPRIVOUT", Private: true, Members: []string{"U1"}},
	{ID: "CPRIVIN", Private: true, BotMember: true, Members: []string{"U1"}},
	{ID: "CARCH", Archived: true, BotMember: true, Members: []string{"U1"}},
	{ID: "CIN", BotMember: true, Members: []string{"U1", slackstandin.BotUserID}},
}

// errCode is a Slack call's error code, "" for success.
func errCode(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// ops are the calls the membership rules govern, each on channel ch.
var ops = map[string]func(ctx context.Context, api *slack.Client, ch string) error{
	"post": func(ctx context.Context, api *slack.Client, ch string) error {
		_, _, err := api.PostMessageContext(ctx, ch, slack.MsgOptionText("Coffee?", false))
		return err
	},
	"ephemeral U1": func(ctx context.Context, api *slack.Client, ch string) error {
		_, err := api.PostEphemeralContext(ctx, ch, "U1", slack.MsgOptionText("for U1", false))
		return err
	},
	"ephemeral U2": func(ctx context.Context, api *slack.Client, ch string) error {
		_, err := api.PostEphemeralContext(ctx, ch, "U2", slack.MsgOptionText("for U2", false))
		return err
	},
	// The ts names no message: an access refusal comes first, and
	// message_not_found shows that access was granted.
	"update": func(ctx context.Context, api *slack.Client, ch string) error {
		_, _, _, err := api.UpdateMessageContext(ctx, ch, "1700000000.000001", slack.MsgOptionText("x", false))
		return err
	},
	"history": func(ctx context.Context, api *slack.Client, ch string) error {
		_, err := api.GetConversationHistoryContext(ctx, &slack.GetConversationHistoryParameters{ChannelID: ch})
		return err
	},
	"replies": func(ctx context.Context, api *slack.Client, ch string) error {
		_, _, _, err := api.GetConversationRepliesContext(ctx, &slack.GetConversationRepliesParameters{ChannelID: ch, Timestamp: "1700000000.000001"})
		return err
	},
	"info": func(ctx context.Context, api *slack.Client, ch string) error {
		_, err := api.GetConversationInfoContext(ctx, &slack.GetConversationInfoInput{ChannelID: ch})
		return err
	},
}

func TestMembershipRules(t *testing.T) {
	srv := slackstandin.NewTestServer(t, slackstandin.Options{Conversations: registry})
	api := newClient(srv)
	tests := []struct {
		channel string
		want    map[string]string // op -> error code
	}{
		{"CPUBOUT", map[string]string{
			"post": "not_in_channel", "ephemeral U1": "not_in_channel", "ephemeral U2": "not_in_channel",
			"update": "not_in_channel", "history": "not_in_channel", "replies": "not_in_channel", "info": "",
		}},
		{"CPRIVOUT", map[string]string{
			"post": "channel_not_found", "ephemeral U1": "channel_not_found", "ephemeral U2": "channel_not_found",
			"update": "channel_not_found", "history": "channel_not_found", "replies": "channel_not_found", "info": "channel_not_found",
		}},
		{"CPRIVIN", map[string]string{
			"post": "", "ephemeral U1": "", "ephemeral U2": "user_not_in_channel",
			"update": "message_not_found", "history": "", "replies": "thread_not_found", "info": "",
		}},
		{"CARCH", map[string]string{
			"post": "is_archived", "ephemeral U1": "is_archived", "ephemeral U2": "is_archived",
			"update": "is_inactive", "history": "", "replies": "thread_not_found", "info": "",
		}},
		{"CIN", map[string]string{
			"post": "", "ephemeral U1": "", "ephemeral U2": "user_not_in_channel",
			"update": "message_not_found", "history": "", "replies": "thread_not_found", "info": "",
		}},
		// The lenient default: nobody registered it, so the app and
		// everyone are in it.
		{"CFREE", map[string]string{
			"post": "", "ephemeral U1": "", "ephemeral U2": "",
			"update": "message_not_found", "history": "", "replies": "thread_not_found", "info": "",
		}},
		{slackstandin.DefaultChannelID, map[string]string{
			"post": "", "ephemeral U1": "", "ephemeral U2": "",
			"update": "message_not_found", "history": "", "replies": "thread_not_found", "info": "",
		}},
		// A DM holds its user and the app, registered or not.
		{"DU1", map[string]string{
			"post": "", "ephemeral U1": "", "ephemeral U2": "user_not_in_channel",
			"update": "message_not_found", "history": "", "replies": "thread_not_found", "info": "",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.channel, func(t *testing.T) {
			for _, op := range slices.Sorted(maps.Keys(ops)) {
				if got := errCode(ops[op](t.Context(), api, tt.channel)); got != tt.want[op] {
					t.Errorf("%s: error %q, want %q", op, got, tt.want[op])
				}
			}
		})
	}
	// Refused posts left nothing behind.
	for _, ch := range []string{"CPUBOUT", "CPRIVOUT", "CARCH"} {
		if m := srv.Messages(ch); len(m) != 0 {
			t.Errorf("%s holds refused posts: %+v", ch, m)
		}
	}
	if e := srv.Ephemerals("U2"); len(e) != 2 || e[0].Channel != "CFREE" || e[1].Channel != slackstandin.DefaultChannelID {
		t.Errorf("U2's ephemerals = %+v, want only the lenient channels'", e)
	}
}

func TestConversationsInfoReflectsRegistry(t *testing.T) {
	srv := slackstandin.NewTestServer(t, slackstandin.Options{Conversations: registry, Users: map[string]string{"U1": "alice", "U2": "bob"}})
	api := newClient(srv)
	tests := []struct {
		id                        string
		member, private, archived bool
		name                      string
		numMembers                int
	}{
		{"CPUBOUT", false, false, false, "lobby", 1},
		{"CPRIVIN", true, true, false, "cprivin", 2},
		{"CARCH", true, false, true, "carch", 2},
		{"CIN", true, false, false, "cin", 2},
		{"CFREE", true, false, false, "cfree", 3}, // everyone: both users and the app
	}
	for _, tt := range tests {
		c, err := api.GetConversationInfoContext(t.Context(), &slack.GetConversationInfoInput{ChannelID: tt.id, IncludeNumMembers: true})
		if err != nil {
			t.Fatalf("%s: %v", tt.id, err)
		}
		if c.IsMember != tt.member || c.IsPrivate != tt.private || c.IsArchived != tt.archived || c.Name != tt.name || c.NumMembers != tt.numMembers || !c.IsChannel {
			t.Errorf("%s: member %v private %v archived %v name %q members %d channel %v", tt.id, c.IsMember, c.IsPrivate, c.IsArchived, c.Name, c.NumMembers, c.IsChannel)
		}
	}
}

func TestConversationsJoin(t *testing.T) {
	srv := slackstandin.NewTestServer(t, slackstandin.Options{Conversations: registry})
	api := newClient(srv)
	if !slices.Contains(slackstandin.Methods(), "conversations.join") {
		t.Errorf("Methods() = %v lacks conversations.join", slackstandin.Methods())
	}
	tests := []struct {
		name, id, err, warning string
	}{
		{"public channel the app is not in", "CPUBOUT", "", ""},
		{"joined already", "CPUBOUT", "", "already_in_channel"},
		{"member from the start", "CIN", "", "already_in_channel"},
		{"lenient default", "CFREE", "", "already_in_channel"},
		{"private", "CPRIVOUT", "method_not_supported_for_channel_type", ""},
		{"archived", "CARCH", "is_archived", ""},
		{"DM", "DU1", "method_not_supported_for_channel_type", ""},
		{"group DM", "G0123ABCDEF", "method_not_supported_for_channel_type", ""},
		{"a user is not a conversation", "U1", "channel_not_found", ""},
		{"not an id", "nope", "channel_not_found", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ch, warning, warnings, err := api.JoinConversationContext(t.Context(), tt.id)
			if errCode(err) != tt.err {
				t.Fatalf("error %q, want %q", errCode(err), tt.err)
			}
			if err != nil {
				return
			}
			if ch == nil || ch.ID != tt.id || !ch.IsMember {
				t.Errorf("channel = %+v, want %s with is_member", ch, tt.id)
			}
			var want []string
			if tt.warning != "" {
				want = []string{tt.warning}
			}
			if warning != tt.warning || !slices.Equal(warnings, want) {
				t.Errorf("warning %q, warnings %q; want %q", warning, warnings, want)
			}
		})
	}
	// Having joined, the app may post.
	if _, _, err := api.PostMessageContext(t.Context(), "CPUBOUT", slack.MsgOptionText("Coffee?", false)); err != nil {
		t.Errorf("post after joining: %v", err)
	}
	if c, _ := srv.Conversation("CPUBOUT"); !c.BotMember {
		t.Errorf("registry after join = %+v", c)
	}
	// Slack's wire form: the warning twice, and no empty metadata fields.
	_, out := rawCall(t, srv, "conversations.join", "application/x-www-form-urlencoded", "Bearer "+srv.BotToken(), "channel=CIN")
	md, _ := json.Marshal(out["response_metadata"])
	if out["warning"] != "already_in_channel" || string(md) != `{"warnings":["already_in_channel"]}` {
		t.Errorf("answer = %v", out)
	}
}

func TestRegistryChangesAtRunTime(t *testing.T) {
	srv := slackstandin.NewTestServer(t, slackstandin.Options{Conversations: registry})
	api := newClient(srv)
	ctx := t.Context()
	post := func(ch string) string { return errCode(ops["post"](ctx, api, ch)) }
	ephemeral := func(ch, user string) string {
		_, err := api.PostEphemeralContext(ctx, ch, user, slack.MsgOptionText("hi", false))
		return errCode(err)
	}

	for _, id := range []string{"", "DU1"} {
		if err := srv.AddConversation(slackstandin.Conversation{ID: id}); !errors.Is(err, slackstandin.ErrNotRegistrable) {
			t.Errorf("AddConversation(%q) = %v, want ErrNotRegistrable", id, err)
		}
		if err := srv.ArchiveConversation(id); !errors.Is(err, slackstandin.ErrNotRegistrable) {
			t.Errorf("ArchiveConversation(%q) = %v, want ErrNotRegistrable", id, err)
		}
	}

	// A channel registered at run time follows the rules at once.
	if err := srv.AddConversation(slackstandin.Conversation{ID: "CNEW", Members: []string{"U1"}}); err != nil {
		t.Fatal(err)
	}
	if got := post("CNEW"); got != "not_in_channel" {
		t.Errorf("post in CNEW = %q, want not_in_channel", got)
	}
	if err := srv.SetBotMember("CNEW", true); err != nil {
		t.Fatal(err)
	}
	if got := ephemeral("CNEW", "U2"); got != "user_not_in_channel" {
		t.Errorf("ephemeral to U2 = %q, want user_not_in_channel", got)
	}
	if err := srv.AddMember("CNEW", "U2"); err != nil {
		t.Fatal(err)
	}
	if got := ephemeral("CNEW", "U2"); got != "" || !srv.IsMember("CNEW", "U2") {
		t.Errorf("ephemeral to U2 after AddMember = %q", got)
	}
	if c, ok := srv.Conversation("CNEW"); !ok || !c.BotMember || !slices.Equal(c.Members, []string{"U1", "U2"}) {
		t.Errorf("Conversation(CNEW) = %+v, %v", c, ok)
	}

	// Changing a channel nobody registered keeps the lenient default's
	// members: everyone.
	if err := srv.SetBotMember(slackstandin.DefaultChannelID, false); err != nil {
		t.Fatal(err)
	}
	if got := post(slackstandin.DefaultChannelID); got != "not_in_channel" {
		t.Errorf("post after the app left = %q, want not_in_channel", got)
	}
	if !srv.IsMember(slackstandin.DefaultChannelID, "U42") || srv.IsMember(slackstandin.DefaultChannelID, slackstandin.BotUserID) {
		t.Error("a lenient channel lost its users, or kept the app")
	}
	if err := srv.ArchiveConversation("CFREE"); err != nil {
		t.Fatal(err)
	}
	if got := ephemeral("CFREE", "U42"); got != "is_archived" {
		t.Errorf("ephemeral in an archived channel = %q, want is_archived", got)
	}

	// Reset: back to Options.Conversations.
	srv.Reset()
	if _, ok := srv.Conversation("CNEW"); ok {
		t.Error("Reset kept a run-time registration")
	}
	if got := post(slackstandin.DefaultChannelID); got != "" {
		t.Errorf("post to the default channel after Reset = %q", got)
	}
	if got := post("CPUBOUT"); got != "not_in_channel" {
		t.Errorf("post to CPUBOUT after Reset = %q, want not_in_channel", got)
	}
}

// An ephemeral in a user's DM reaches only that user: posting one for
// someone else there is how a forwarded DM is answered wrongly.
func TestDMMembersAreFixed(t *testing.T) {
	srv := slackstandin.NewTestServer(t, slackstandin.Options{})
	api := newClient(srv)
	tests := []struct {
		channel, user, want string
	}{
		{"DU1", "U1", ""},
		{"DU1", "U2", "user_not_in_channel"},
		{"U1", "U2", "user_not_in_channel"}, // a user id names their DM
		{"U2", "U2", ""},
	}
	for _, tt := range tests {
		_, err := api.PostEphemeralContext(t.Context(), tt.channel, tt.user, slack.MsgOptionText("Only the runner can complete", false))
		if got := errCode(err); got != tt.want {
			t.Errorf("ephemeral in %s for %s = %q, want %q", tt.channel, tt.user, got, tt.want)
		}
	}
	if srv.IsMember("DU1", "U2") || !srv.IsMember("DU1", "U1") || !srv.IsMember("DU1", slackstandin.BotUserID) {
		t.Error("DU1's members are not exactly U1 and the app")
	}
}

// A deactivated user cannot be DMed: conversations.open refuses, as Slack
// documents (user_disabled); Reset forgets the deactivation.
func TestDeactivatedUser(t *testing.T) {
	srv := slackstandin.NewTestServer(t, slackstandin.Options{})
	api := newClient(srv)
	open := func(users ...string) string {
		_, _, _, err := api.OpenConversationContext(t.Context(), &slack.OpenConversationParameters{Users: users})
		return errCode(err)
	}
	srv.DeactivateUser("U9")
	for _, tt := range []struct {
		users []string
		want  string
	}{
		{[]string{"U9"}, "user_disabled"},
		{[]string{"U1", "U9"}, "user_disabled"},
		{[]string{"U1"}, ""},
	} {
		if got := open(tt.users...); got != tt.want {
			t.Errorf("open %v = %q, want %q", tt.users, got, tt.want)
		}
	}
	srv.Reset()
	if got := open("U9"); got != "" {
		t.Errorf("after Reset: %q, want the DM opened", got)
	}
}

// Typing or clicking in a registered channel makes a person a member of it;
// clicking in someone else's DM does not, yet the click's response_url
// reaches them there.
func TestSimulatedUsersBecomeMembers(t *testing.T) {
	var srv *slackstandin.Server
	responseURLs := make(chan string, 4)
	ingress := &fakeIngress{t: t, secret: slackstandin.DefaultSigningSecret}
	ingress.handle = func(w http.ResponseWriter, form url.Values) {
		u := form.Get("response_url")
		if p := form.Get("payload"); p != "" {
			var cb slack.InteractionCallback
			_ = json.Unmarshal([]byte(p), &cb)
			u = cb.ResponseURL
		}
		responseURLs <- u
		w.WriteHeader(http.StatusOK)
	}
	ing := httptest.NewServer(ingress)
	t.Cleanup(ing.Close)
	srv = slackstandin.NewTestServer(t, slackstandin.Options{
		CommandsURL:     ing.URL + "/slack/commands",
		InteractionsURL: ing.URL + "/slack/interactions",
		Conversations: []slackstandin.Conversation{
			{ID: "CTEAM", BotMember: true},
			{ID: "COLD", BotMember: true, Archived: true},
		},
	})
	api := newClient(srv)
	ctx := t.Context()

	if _, err := srv.RunCommand(ctx, slackstandin.Command{Command: "/coffee", UserID: "U1", ChannelID: "CTEAM"}); err != nil {
		t.Fatal(err)
	}
	<-responseURLs
	_, teamTS, err := api.PostMessageContext(ctx, "CTEAM", slack.MsgOptionText("Coffee run", false))
	if err != nil {
		t.Fatal(err)
	}
	_, dmTS, err := api.PostMessageContext(ctx, "DU1", slack.MsgOptionText("You're the runner", false))
	if err != nil {
		t.Fatal(err)
	}
	click := func(user, channel, ts string) string {
		t.Helper()
		payload, _ := json.Marshal(map[string]any{
			"type":      "block_actions",
			"user":      map[string]string{"id": user},
			"container": map[string]any{"type": "message", "message_ts": ts, "channel_id": channel},
			"actions":   []map[string]string{{"type": "button", "action_id": "run_complete", "value": "r1"}},
		})
		if _, err := srv.SendInteraction(ctx, payload); err != nil {
			t.Fatal(err)
		}
		return <-responseURLs
	}
	click("U2", "CTEAM", teamTS)
	forwarded := click("U3", "DU1", dmTS)

	c, _ := srv.Conversation("CTEAM")
	if !slices.Equal(c.Members, []string{"U1", "U2"}) {
		t.Errorf("CTEAM members = %q, want the typist and the clicker", c.Members)
	}
	if srv.IsMember("DU1", "U3") {
		t.Error("a click in U1's DM made U3 a member of it")
	}
	if _, err := api.PostEphemeralContext(ctx, "DU1", "U3", slack.MsgOptionText("Only the runner can complete", false)); errCode(err) != "user_not_in_channel" {
		t.Errorf("ephemeral for U3 in U1's DM: %v, want user_not_in_channel", err)
	}
	if err := slack.PostWebhookContext(ctx, forwarded, &slack.WebhookMessage{Text: "Only the runner can complete"}); err != nil {
		t.Errorf("the click's response_url: %v", err)
	}
	if e := srv.Ephemerals("U3"); len(e) != 1 || e[0].Channel != "DU1" {
		t.Errorf("U3's ephemerals = %+v, want the answer where they clicked", e)
	}

	// Nobody can type in an archived channel.
	_, err = srv.RunCommand(ctx, slackstandin.Command{Command: "/coffee", UserID: "U1", ChannelID: "COLD"})
	if !errors.Is(err, slackstandin.ErrBadRequest) || !strings.Contains(err.Error(), "archived") {
		t.Errorf("command in an archived channel: %v, want ErrBadRequest", err)
	}
}
