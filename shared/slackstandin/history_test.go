package slackstandin_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"testing"

	"github.com/slack-go/slack"

	"github.com/coffeebuddy/coffeebuddy/shared/slackstandin"
)

// post posts text to channel (in thread when set) with opts and returns
// the ts.
func post(t *testing.T, api *slack.Client, channel, thread, text string, opts ...slack.MsgOption) string {
	t.Helper()
	opts = append([]slack.MsgOption{slack.MsgOptionText(text, false)}, opts...)
	if thread != "" {
		opts = append(opts, slack.MsgOptionTS(thread))
	}
	_, ts, err := api.PostMessageContext(t.Context(), channel, opts...)
	if err != nil {
		t.Fatalf("post %q: %v", text, err)
	}
	return ts
}

func keyed(key string) slack.MsgOption {
	return slack.MsgOptionMetadata(slack.SlackMetadata{EventType: "coffeebuddy_post", EventPayload: map[string]any{"key": key}})
}

func texts(msgs []slack.Message) []string {
	out := make([]string, 0, len(msgs))
	for _, m := range msgs {
		out = append(out, m.Text)
	}
	return out
}

func history(t *testing.T, api *slack.Client, p slack.GetConversationHistoryParameters) *slack.GetConversationHistoryResponse {
	t.Helper()
	res, err := api.GetConversationHistoryContext(t.Context(), &p)
	if err != nil {
		t.Fatalf("conversations.history %+v: %v", p, err)
	}
	return res
}

// History lists top-level messages newest first; a thread parent carries
// the thread's summary, replies are left out, and metadata comes only with
// include_all_metadata.
func TestConversationsHistory(t *testing.T) {
	srv := slackstandin.NewTestServer(t, slackstandin.Options{})
	api := newClient(srv)
	first := post(t, api, "C1", "", "first", keyed("k-1"))
	post(t, api, "C1", first, "reply")
	third := post(t, api, "C1", "", "third")
	post(t, api, "C2", "", "elsewhere")

	plain := history(t, api, slack.GetConversationHistoryParameters{ChannelID: "C1"})
	if got := texts(plain.Messages); !slices.Equal(got, []string{"third", "first"}) {
		t.Fatalf("history = %q, want [third first]", got)
	}
	if plain.HasMore || plain.ResponseMetaData.NextCursor != "" {
		t.Errorf("has_more = %v, cursor %q on the only page", plain.HasMore, plain.ResponseMetaData.NextCursor)
	}
	parent := plain.Messages[1]
	if parent.Timestamp != first || parent.ThreadTimestamp != first || parent.ReplyCount != 1 ||
		parent.LatestReply == "" || !slices.Equal(parent.ReplyUsers, []string{slackstandin.BotUserID}) {
		t.Errorf("thread parent = %+v", parent.Msg)
	}
	if plain.Messages[0].Timestamp != third || plain.Messages[0].ReplyCount != 0 || plain.Messages[0].ThreadTimestamp != "" {
		t.Errorf("plain message = %+v", plain.Messages[0].Msg)
	}
	if parent.Metadata.EventType != "" {
		t.Errorf("metadata without include_all_metadata: %+v", parent.Metadata)
	}

	meta := history(t, api, slack.GetConversationHistoryParameters{ChannelID: "C1", IncludeAllMetadata: true})
	if md := meta.Messages[1].Metadata; md.EventType != "coffeebuddy_post" || md.EventPayload["key"] != "k-1" {
		t.Errorf("metadata = %+v, want coffeebuddy_post k-1", md)
	}
	if md := meta.Messages[0].Metadata; md.EventType != "" {
		t.Errorf("message posted without metadata shows %+v", md)
	}

	none := history(t, api, slack.GetConversationHistoryParameters{ChannelID: "C-never-used"})
	if len(none.Messages) != 0 || none.HasMore {
		t.Errorf("unused channel: %+v", none)
	}
}

func TestConversationsHistoryWindow(t *testing.T) {
	srv := slackstandin.NewTestServer(t, slackstandin.Options{})
	api := newClient(srv)
	var ts []string
	for i := range 3 {
		ts = append(ts, post(t, api, "C1", "", fmt.Sprint("m", i)))
	}
	tests := []struct {
		name string
		p    slack.GetConversationHistoryParameters
		want []string
	}{
		{"oldest is exclusive", slack.GetConversationHistoryParameters{Oldest: ts[0]}, []string{"m2", "m1"}},
		{"oldest inclusive", slack.GetConversationHistoryParameters{Oldest: ts[0], Inclusive: true}, []string{"m2", "m1", "m0"}},
		{"latest is exclusive", slack.GetConversationHistoryParameters{Latest: ts[2]}, []string{"m1", "m0"}},
		{"both inclusive", slack.GetConversationHistoryParameters{Oldest: ts[1], Latest: ts[1], Inclusive: true}, []string{"m1"}},
		{"whole seconds", slack.GetConversationHistoryParameters{Oldest: "0"}, []string{"m2", "m1", "m0"}},
		{"future oldest", slack.GetConversationHistoryParameters{Oldest: "99999999999"}, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.p.ChannelID = "C1"
			if got := texts(history(t, api, tt.p).Messages); !slices.Equal(got, tt.want) {
				t.Errorf("history = %q, want %q", got, tt.want)
			}
		})
	}
	_, err := api.GetConversationHistoryContext(t.Context(), &slack.GetConversationHistoryParameters{ChannelID: "C1", Oldest: "yesterday"})
	if err == nil || err.Error() != "invalid_ts_oldest" {
		t.Errorf("bad oldest: %v, want invalid_ts_oldest", err)
	}
	_, err = api.GetConversationHistoryContext(t.Context(), &slack.GetConversationHistoryParameters{ChannelID: "C1", Latest: "soon"})
	if err == nil || err.Error() != "invalid_ts_latest" {
		t.Errorf("bad latest: %v, want invalid_ts_latest", err)
	}
	_, err = api.GetConversationHistoryContext(t.Context(), &slack.GetConversationHistoryParameters{ChannelID: "C1", Cursor: "bm9wZQ=="})
	if err == nil || err.Error() != "invalid_cursor" {
		t.Errorf("bad cursor: %v, want invalid_cursor", err)
	}
}

// Following next_cursor visits every message once, newest first.
func TestConversationsHistoryPages(t *testing.T) {
	srv := slackstandin.NewTestServer(t, slackstandin.Options{})
	api := newClient(srv)
	for i := range 5 {
		post(t, api, "C1", "", fmt.Sprint("m", i))
	}
	var got []string
	var sizes []int
	p := slack.GetConversationHistoryParameters{ChannelID: "C1", Limit: 2}
	for {
		res := history(t, api, p)
		got = append(got, texts(res.Messages)...)
		sizes = append(sizes, len(res.Messages))
		if !res.HasMore {
			if res.ResponseMetaData.NextCursor != "" {
				t.Errorf("last page has a cursor %q", res.ResponseMetaData.NextCursor)
			}
			break
		}
		if len(sizes) > 5 {
			t.Fatal("paging does not end")
		}
		p.Cursor = res.ResponseMetaData.NextCursor
	}
	if !slices.Equal(got, []string{"m4", "m3", "m2", "m1", "m0"}) || !slices.Equal(sizes, []int{2, 2, 1}) {
		t.Fatalf("pages %v = %q", sizes, got)
	}
}

func replies(t *testing.T, api *slack.Client, p slack.GetConversationRepliesParameters) ([]slack.Message, bool, string) {
	t.Helper()
	msgs, more, cursor, err := api.GetConversationRepliesContext(t.Context(), &p)
	if err != nil {
		t.Fatalf("conversations.replies %+v: %v", p, err)
	}
	return msgs, more, cursor
}

// Replies lists the parent first, then the replies oldest first, whichever
// message of the thread ts names; oldest bounds the replies, not the parent.
func TestConversationsReplies(t *testing.T) {
	srv := slackstandin.NewTestServer(t, slackstandin.Options{})
	api := newClient(srv)
	parent := post(t, api, "C1", "", "parent")
	r1 := post(t, api, "C1", parent, "r1", keyed("k-r1"))
	post(t, api, "C1", "", "unrelated")
	post(t, api, "C1", parent, "r2")
	lone := post(t, api, "C1", "", "lone")

	for _, ts := range []string{parent, r1} {
		msgs, more, _ := replies(t, api, slack.GetConversationRepliesParameters{ChannelID: "C1", Timestamp: ts})
		if got := texts(msgs); !slices.Equal(got, []string{"parent", "r1", "r2"}) || more {
			t.Fatalf("replies(%s) = %q (has_more %v), want [parent r1 r2]", ts, got, more)
		}
		if msgs[0].ReplyCount != 2 || msgs[1].ThreadTimestamp != parent || msgs[1].ParentUserId != slackstandin.BotUserID {
			t.Errorf("thread fields: parent %+v, reply %+v", msgs[0].Msg, msgs[1].Msg)
		}
		if msgs[1].Metadata.EventType != "" {
			t.Errorf("metadata without include_all_metadata: %+v", msgs[1].Metadata)
		}
	}
	msgs, _, _ := replies(t, api, slack.GetConversationRepliesParameters{ChannelID: "C1", Timestamp: parent, Oldest: r1, IncludeAllMetadata: true})
	if got := texts(msgs); !slices.Equal(got, []string{"parent", "r2"}) {
		t.Errorf("replies after r1 = %q, want [parent r2]", got)
	}
	msgs, _, _ = replies(t, api, slack.GetConversationRepliesParameters{ChannelID: "C1", Timestamp: parent, Oldest: r1, Inclusive: true, IncludeAllMetadata: true})
	if len(msgs) != 3 || msgs[1].Metadata.EventType != "coffeebuddy_post" || msgs[1].Metadata.EventPayload["key"] != "k-r1" {
		t.Errorf("replies with metadata = %+v", msgs)
	}
	msgs, _, _ = replies(t, api, slack.GetConversationRepliesParameters{ChannelID: "C1", Timestamp: lone})
	if got := texts(msgs); !slices.Equal(got, []string{"lone"}) {
		t.Errorf("a message without replies: %q", got)
	}
	for name, p := range map[string]slack.GetConversationRepliesParameters{
		"unknown ts":      {ChannelID: "C1", Timestamp: "1.000001"},
		"unknown channel": {ChannelID: "C9", Timestamp: parent},
	} {
		if _, _, _, err := api.GetConversationRepliesContext(t.Context(), &p); err == nil || err.Error() != "thread_not_found" {
			t.Errorf("%s: %v, want thread_not_found", name, err)
		}
	}
}

func TestConversationsRepliesPages(t *testing.T) {
	srv := slackstandin.NewTestServer(t, slackstandin.Options{})
	api := newClient(srv)
	parent := post(t, api, "C1", "", "parent")
	for i := range 5 {
		post(t, api, "C1", parent, fmt.Sprint("r", i))
	}
	var got []string
	p := slack.GetConversationRepliesParameters{ChannelID: "C1", Timestamp: parent, Limit: 3}
	for page := 0; ; page++ {
		msgs, more, cursor := replies(t, api, p)
		if len(msgs) == 0 || msgs[0].Text != "parent" {
			t.Fatalf("page %d does not start with the parent: %q", page, texts(msgs))
		}
		got = append(got, texts(msgs[1:])...)
		if !more {
			break
		}
		if page > 5 {
			t.Fatal("paging does not end")
		}
		p.Cursor = cursor
	}
	if !slices.Equal(got, []string{"r0", "r1", "r2", "r3", "r4"}) {
		t.Fatalf("replies over pages = %q", got)
	}
}

// Slack takes metadata as a JSON object or a JSON string, in JSON and form
// bodies alike, and keeps it on the message.
func TestMetadataForms(t *testing.T) {
	srv := slackstandin.NewTestServer(t, slackstandin.Options{})
	api := newClient(srv)
	auth := "Bearer " + srv.BotToken()
	md := `{"event_type":"coffeebuddy_post","event_payload":{"key":"%s"}}`
	bodies := []struct{ name, contentType, body string }{
		{"json object", "application/json", `{"channel":"C1","text":"a","metadata":` + fmt.Sprintf(md, "a") + `}`},
		{"json string", "application/json", `{"channel":"C1","text":"b","metadata":` + fmt.Sprintf("%q", fmt.Sprintf(md, "b")) + `}`},
		{"form", "application/x-www-form-urlencoded", url.Values{"channel": {"C1"}, "text": {"c"}, "metadata": {fmt.Sprintf(md, "c")}}.Encode()},
	}
	for _, b := range bodies {
		if status, out := rawCall(t, srv, "chat.postMessage", b.contentType, auth, b.body); status != http.StatusOK || out["ok"] != true {
			t.Fatalf("%s: %d %v", b.name, status, out)
		}
	}
	res := history(t, api, slack.GetConversationHistoryParameters{ChannelID: "C1", IncludeAllMetadata: true})
	var keys []string
	for _, m := range res.Messages {
		if m.Metadata.EventType != "coffeebuddy_post" {
			t.Errorf("%q: metadata %+v", m.Text, m.Metadata)
		}
		keys = append(keys, fmt.Sprint(m.Metadata.EventPayload["key"]))
	}
	if !slices.Equal(keys, []string{"c", "b", "a"}) {
		t.Errorf("keys = %q, want [c b a]", keys)
	}
	_, out := rawCall(t, srv, "chat.postMessage", "application/json", auth, `{"channel":"C1","text":"x","metadata":"{nope"}`)
	if out["error"] != "invalid_metadata_format" {
		t.Errorf("bad metadata: %v, want invalid_metadata_format", out)
	}
}

// A DM reads back under the channel conversations.open answered.
func TestHistoryOfADM(t *testing.T) {
	srv := slackstandin.NewTestServer(t, slackstandin.Options{})
	api := newClient(srv)
	ch, _, _, err := api.OpenConversationContext(context.Background(), &slack.OpenConversationParameters{Users: []string{"U7"}})
	if err != nil {
		t.Fatal(err)
	}
	post(t, api, ch.ID, "", "hello U7", keyed("dm"))
	res := history(t, api, slack.GetConversationHistoryParameters{ChannelID: ch.ID, IncludeAllMetadata: true})
	if got := texts(res.Messages); !slices.Equal(got, []string{"hello U7"}) || res.Messages[0].Metadata.EventPayload["key"] != "dm" {
		t.Fatalf("DM history = %q %+v", got, res.Messages)
	}
}
