package slackstandin_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/slack-go/slack"

	"github.com/coffeebuddy/coffeebuddy/shared/slackstandin"
)

// Block Kit JSON builders for the limit tests.
func jsonStr(s string) string { b, _ := json.Marshal(s); return string(b) }

func sectionJSON(text string) string {
	return `{"type":"section","text":{"type":"mrkdwn","text":` + jsonStr(text) + `}}`
}

func buttonJSON(text, actionID, value string) string {
	return `{"type":"button","text":{"type":"plain_text","text":` + jsonStr(text) + `},"action_id":` + jsonStr(actionID) + `,"value":` + jsonStr(value) + `}`
}

func repeatJSON(item string, n int) string {
	return "[" + strings.TrimSuffix(strings.Repeat(item+",", n), ",") + "]"
}

// metadataMessages is response_metadata.messages of a decoded answer.
func metadataMessages(out map[string]any) []string {
	md, _ := out["response_metadata"].(map[string]any)
	raw, _ := md["messages"].([]any)
	var msgs []string
	for _, m := range raw {
		msgs = append(msgs, fmt.Sprint(m))
	}
	return msgs
}

func TestBlockKitLimits(t *testing.T) {
	a := func(n int) string { return strings.Repeat("a", n) }
	fieldsJSON := func(n, size int) string {
		return `[{"type":"section","fields":` + repeatJSON(`{"type":"mrkdwn","text":`+jsonStr(a(size))+`}`, n) + `}]`
	}
	tests := []struct {
		name, blocks string
		want         []string // response_metadata.messages; none = accepted
	}{
		{"section text at the limit", "[" + sectionJSON(a(3000)) + "]", nil},
		{"section text counts characters, not bytes", "[" + sectionJSON(strings.Repeat("é", 3000)) + "]", nil},
		{"section text over", "[" + sectionJSON(a(3001)) + "]",
			[]string{"[ERROR] must be less than 3001 characters [json-pointer:/blocks/0/text/text]"}},
		{"ten fields of 2000", fieldsJSON(10, 2000), nil},
		{"eleven fields", fieldsJSON(11, 1),
			[]string{"[ERROR] no more than 10 items allowed [json-pointer:/blocks/0/fields]"}},
		{"field over", fieldsJSON(2, 2001), []string{
			"[ERROR] must be less than 2001 characters [json-pointer:/blocks/0/fields/0/text]",
			"[ERROR] must be less than 2001 characters [json-pointer:/blocks/0/fields/1/text]",
		}},
		{"header at the limit", `[{"type":"header","text":{"type":"plain_text","text":` + jsonStr(a(150)) + `}}]`, nil},
		{"header over", `[{"type":"divider"},{"type":"header","text":{"type":"plain_text","text":` + jsonStr(a(151)) + `}}]`,
			[]string{"[ERROR] must be less than 151 characters [json-pointer:/blocks/1/text/text]"}},
		{"context with ten elements", `[{"type":"context","elements":` + repeatJSON(`{"type":"mrkdwn","text":"x"}`, 10) + `}]`, nil},
		{"context with eleven", `[{"type":"context","elements":` + repeatJSON(`{"type":"mrkdwn","text":"x"}`, 11) + `}]`,
			[]string{"[ERROR] no more than 10 items allowed [json-pointer:/blocks/0/elements]"}},
		{"actions with 25 buttons", `[{"type":"actions","elements":[` + strings.Join(func() []string {
			var b []string
			for i := range 25 {
				b = append(b, buttonJSON("Go", fmt.Sprint("go_", i), "v"))
			}
			return b
		}(), ",") + `]}]`, nil},
		{"actions with 26 elements", `[{"type":"actions","elements":` + repeatJSON(`{"type":"overflow","options":[]}`, 26) + `}]`,
			[]string{"[ERROR] no more than 25 items allowed [json-pointer:/blocks/0/elements]"}},
		{"button limits", `[{"type":"actions","elements":[` + buttonJSON(a(76), a(256), a(2001)) + `]}]`, []string{
			"[ERROR] must be less than 256 characters [json-pointer:/blocks/0/elements/0/action_id]",
			"[ERROR] must be less than 76 characters [json-pointer:/blocks/0/elements/0/text/text]",
			"[ERROR] must be less than 2001 characters [json-pointer:/blocks/0/elements/0/value]",
		}},
		{"button at the limits", `[{"type":"actions","elements":[` + buttonJSON(a(75), a(255), a(2000)) + `]}]`, nil},
		{"section accessory button", `[{"type":"section","text":{"type":"mrkdwn","text":"x"},"accessory":` + buttonJSON(a(76), "b", "v") + `}]`,
			[]string{"[ERROR] must be less than 76 characters [json-pointer:/blocks/0/accessory/text/text]"}},
		{"block_id too long", `[{"type":"divider","block_id":` + jsonStr(a(256)) + `}]`,
			[]string{"[ERROR] must be less than 256 characters [json-pointer:/blocks/0/block_id]"}},
		{"duplicate block_id", `[{"type":"divider","block_id":"d"},{"type":"divider"},{"type":"divider","block_id":"d"}]`,
			[]string{`[ERROR] must be unique within the message: "d" is used twice [json-pointer:/blocks/2/block_id]`}},
		{"duplicate action_id in a block", `[{"type":"actions","elements":[` + buttonJSON("A", "go", "1") + "," + buttonJSON("B", "go", "2") + `]}]`,
			[]string{`[ERROR] must be unique within the block: "go" is used twice [json-pointer:/blocks/0/elements/1/action_id]`}},
		// "Should be unique among all other action_ids in the containing
		// block": one per row of a list is fine.
		{"same action_id in two blocks", `[{"type":"actions","elements":[` + buttonJSON("A", "go", "1") + `]},{"type":"actions","elements":[` + buttonJSON("B", "go", "2") + `]}]`, nil},
		{"unknown block type", `[{"type":"section","text":{"type":"mrkdwn","text":"x"}},{"type":"carousel_of_doom"}]`,
			[]string{"[ERROR] failed to match all allowed schemas [json-pointer:/blocks/1]"}},
		{"block without a type", `[{"text":{"type":"mrkdwn","text":"x"}}]`,
			[]string{"[ERROR] failed to match all allowed schemas [json-pointer:/blocks/0]"}},
		{"fifty blocks", repeatJSON(`{"type":"divider"}`, 50), nil},
		{"fifty-one blocks", repeatJSON(`{"type":"divider"}`, 51),
			[]string{"[ERROR] no more than 50 items allowed [json-pointer:/blocks]"}},
		{"rich text and markdown blocks pass", `[{"type":"rich_text","elements":[{"type":"rich_text_section","elements":[{"type":"text","text":"hi"}]}]},{"type":"markdown","text":"**hi**"}]`, nil},
	}
	srv := slackstandin.NewTestServer(t, slackstandin.Options{})
	auth := "Bearer " + srv.BotToken()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, out := rawCall(t, srv, "chat.postMessage", "application/json", auth,
				`{"channel":"C0LOCAL","text":"fallback","blocks":`+tt.blocks+`}`)
			if status != http.StatusOK {
				t.Fatalf("HTTP %d", status)
			}
			if tt.want == nil {
				if out["ok"] != true {
					t.Fatalf("refused: %v", out)
				}
				return
			}
			if out["ok"] != false || out["error"] != "invalid_blocks" {
				t.Fatalf("answer = %v, want invalid_blocks", out)
			}
			if got := metadataMessages(out); !slices.Equal(got, tt.want) {
				t.Errorf("messages:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

// Every surface that takes blocks checks them: the chat methods and
// response_url as messages (invalid_blocks), views as modals
// (invalid_arguments, pointers under /view).
func TestBlockKitLimitsOnEverySurface(t *testing.T) {
	srv := slackstandin.NewTestServer(t, slackstandin.Options{})
	api := newClient(srv)
	ctx := t.Context()
	long := []slack.Block{section(strings.Repeat("a", 3001))}
	msg := "[ERROR] must be less than 3001 characters [json-pointer:/blocks/0/text/text]"
	_, ts, err := api.PostMessageContext(ctx, "C0LOCAL", slack.MsgOptionText("run", false))
	if err != nil {
		t.Fatal(err)
	}
	longModal := modal("Order")
	longModal.Blocks.BlockSet = append(longModal.Blocks.BlockSet, long...)

	tests := []struct {
		name, code, msg string
		call            func() error
	}{
		{"chat.postMessage", "invalid_blocks", msg, func() error {
			_, _, err := api.PostMessageContext(ctx, "C0LOCAL", slack.MsgOptionBlocks(long...))
			return err
		}},
		{"chat.update", "invalid_blocks", msg, func() error {
			_, _, _, err := api.UpdateMessageContext(ctx, "C0LOCAL", ts, slack.MsgOptionBlocks(long...))
			return err
		}},
		{"chat.postEphemeral", "invalid_blocks", msg, func() error {
			_, err := api.PostEphemeralContext(ctx, "C0LOCAL", "U1", slack.MsgOptionBlocks(long...))
			return err
		}},
		{"views.open", "invalid_arguments", "[ERROR] must be less than 3001 characters [json-pointer:/view/blocks/1/text/text]", func() error {
			_, err := api.OpenViewContext(ctx, srv.NewTriggerID("U1"), longModal)
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			var se slack.SlackErrorResponse
			if !errors.As(err, &se) || se.Err != tt.code || !slices.Equal(se.ResponseMetadata.Messages, []string{tt.msg}) {
				t.Errorf("err = %#v, want %s with %q", err, tt.code, tt.msg)
			}
		})
	}
	if m := srv.Messages("C0LOCAL"); len(m) != 1 || m[0].Text != "run" || len(m[0].Blocks) != 0 {
		t.Errorf("refused calls changed the channel: %+v", m)
	}

	u := srv.NewResponseURL("C0LOCAL", "U1")
	status, out := postResponse(t, u, map[string]any{"text": "x", "blocks": json.RawMessage(repeatJSON(`{"type":"divider"}`, 51))})
	if status != http.StatusBadRequest || out["error"] != "invalid_blocks" ||
		!slices.Equal(metadataMessages(out), []string{"[ERROR] no more than 50 items allowed [json-pointer:/blocks]"}) {
		t.Errorf("response_url with 51 blocks = %d %v", status, out)
	}
}

// The project's own messages and modals (shared/blocks' golden files) pass:
// the stand-in must not refuse what Slack accepts.
func TestProjectGoldensPass(t *testing.T) {
	files, err := filepath.Glob("../blocks/testdata/*.golden")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files under ../blocks/testdata (%v)", err)
	}
	srv := slackstandin.NewTestServer(t, slackstandin.Options{})
	auth := "Bearer " + srv.BotToken()
	checked := 0
	// check posts one golden value where it would go in Slack.
	var check func(t *testing.T, name string, v json.RawMessage)
	check = func(t *testing.T, name string, v json.RawMessage) {
		var obj map[string]json.RawMessage
		switch {
		case len(v) > 0 && v[0] == '[': // a blocks array
			_, out := rawCall(t, srv, "chat.postMessage", "application/json", auth, `{"channel":"C0LOCAL","text":"fallback","blocks":`+string(v)+`}`)
			if out["ok"] != true {
				t.Errorf("%s: chat.postMessage refused it: %v", name, out)
			}
		case len(v) > 0 && v[0] == '"': // a plain text message
			_, out := rawCall(t, srv, "chat.postMessage", "application/json", auth, `{"channel":"C0LOCAL","text":`+string(v)+`}`)
			if out["ok"] != true {
				t.Errorf("%s: chat.postMessage refused it: %v", name, out)
			}
		case json.Unmarshal(v, &obj) != nil:
			t.Errorf("%s: neither text, blocks nor an object", name)
			return
		case string(obj["type"]) == `"modal"`:
			body := `{"trigger_id":` + jsonStr(srv.NewTriggerID("U1")) + `,"view":` + string(v) + `}`
			if _, out := rawCall(t, srv, "views.open", "application/json", auth, body); out["ok"] != true {
				t.Errorf("%s: views.open refused it: %v", name, out)
			}
		case obj["response_type"] != nil:
			if status, out := postResponse(t, srv.NewResponseURL("C0LOCAL", "U1"), v); status != http.StatusOK {
				t.Errorf("%s: response_url refused it: %d %v", name, status, out)
			}
		case obj["text"] != nil || obj["blocks"] != nil:
			obj["channel"] = json.RawMessage(`"C0LOCAL"`)
			body, _ := json.Marshal(obj)
			if _, out := rawCall(t, srv, "chat.postMessage", "application/json", auth, string(body)); out["ok"] != true {
				t.Errorf("%s: chat.postMessage refused it: %v", name, out)
			}
		default: // a set of named messages
			for _, k := range slices.Sorted(maps.Keys(obj)) {
				check(t, name+"/"+k, obj[k])
			}
			return
		}
		checked++
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		check(t, filepath.Base(f), bytes.TrimSpace(b))
	}
	t.Logf("%d golden messages and modals from %d files accepted", checked, len(files))
}
