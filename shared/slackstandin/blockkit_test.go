package slackstandin

import (
	"encoding/json"
	"flag"
	"html/template"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden HTML in testdata/render")

// renderGolden draws one of shared/blocks' golden files the way the page
// draws it: a message ({"text","blocks"} or a bare block list), a command
// answer ({"response_type","text"}) or a modal.
func renderGolden(t *testing.T, raw []byte) template.HTML {
	t.Helper()
	r := blockRenderer{names: testNames, interactive: true, formID: "f"}
	if raw[0] == '[' {
		h, err := r.render(raw)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	var m struct {
		Type   string          `json:"type"`
		Text   string          `json:"text"`
		Blocks json.RawMessage `json:"blocks"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	if len(m.Blocks) > 0 {
		h, err := r.render(m.Blocks)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	return renderMrkdwn(m.Text, testNames)
}

// TestRenderProjectGoldens draws every message and modal CoffeeBuddy sends
// (shared/blocks/testdata) and pins the HTML (go test -update rewrites it).
func TestRenderProjectGoldens(t *testing.T) {
	files, err := filepath.Glob("../blocks/testdata/*.golden")
	if err != nil || len(files) == 0 {
		t.Fatalf("no goldens in ../blocks/testdata: %v", err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".golden")
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			got := string(renderGolden(t, raw))
			golden := filepath.Join("testdata", "render", name+".html")
			if *update {
				if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (go test -run TestRenderProjectGoldens -update writes it)", err)
			}
			if got != string(want) {
				t.Errorf("HTML of %s differs from %s:\n%s", name, golden, got)
			}
		})
	}
}

// TestRenderWhatReadersNeed pins what the issue found missing: names in
// the order list, one item per order, emoji, formatting, literal user
// text, dates the page can localise, and a real form.
func TestRenderWhatReadersNeed(t *testing.T) {
	read := func(name string) string {
		raw, err := os.ReadFile("../blocks/testdata/" + name + ".golden")
		if err != nil {
			t.Fatal(err)
		}
		return string(renderGolden(t, raw))
	}
	tests := []struct {
		golden string
		want   []string
		not    []string
	}{
		{"run_message_orders", []string{
			`<span class="mention" data-user="U0ALICE">@alice</span>: Large Latte (oat milk)</li>`,
			// bob's customization is shown exactly as typed: no ping, no bold.
			`<span class="mention me" data-user="U0BOB">@bob</span>: Small Mocha (&lt;!channel&gt; *bold* &amp; &lt;@U0EVE&gt;)</li>`,
			`<ul class="rt-list indent-0"><li>`,
			`<b>Orders (3)</b>`, `<b>Totals:</b> 2× Large Latte, 1× Small Mocha`,
			`aria-label="coffee" title=":coffee:">☕</span>`, `title=":raising_hand:">🙋</span>`,
			`<time class="slack-date" datetime="2026-11-21T10:15:00Z" data-unix="1795256100" data-format="{time}">10:15 UTC</time>`,
			`<button type="button" class="btn primary" data-action-id="order_add" data-block-id="run_actions">Add my order</button>`,
			`data-action-id="run_close_now"`,
		}, []string{":coffee: <span", "*Orders", "broadcast"}},
		{"runner_dm", []string{
			`<b>You&#39;re on coffee duty!</b>`, `<span class="mention channel">#c0001</span>`,
			`@alice</span>: Large Latte (oat milk)</li>`, `data-action-id="run_complete"`, `title=":runner:">🏃</span>`,
		}, nil},
		{"runner_dm_done", []string{`title=":white_check_mark:">✅</span>`, `data-format="{date_short_pretty} at {time}"`}, []string{"<button"}},
		{"notices_cancel", []string{
			`title=":x:">❌</span> <span class="mention" data-user="U0ALICE">@alice</span> cancelled this coffee run (reason: meeting moved &lt;!channel&gt; *bold* &amp; &lt;@U0EVE&gt;).`,
		}, []string{"broadcast"}},
		{"history_page1", []string{
			`<b>Coffee runs in this channel</b>`, `<br>• <time class="slack-date"`, `Alice &lt;script&gt;, 4 orders`,
			`<i>More: <code class="md-code">/coffee-history --page 2</code></i>`,
		}, []string{"<script"}},
		{"order_modal_prefilled", []string{
			`<label for="f-0">Drink</label>`,
			`<select id="f-0" aria-describedby="f-0-hint f-0-err"><option value="">Choose a drink</option><option value="latte" selected>Latte</option>`,
			`<input id="f-2" type="text" value="" placeholder="e.g. oat milk, extra shot" maxlength="200" data-maxlength="200"`,
			`Customizations <span class="optional">(optional)</span>`, `Up to 200 characters.`,
			`data-error-for="customizations"`,
		}, nil},
		{"order_modal_editing", []string{`<option value="mocha" selected>Mocha</option>`, `value="oat milk &lt;!here&gt;"`}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			got := read(tt.golden)
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("lacks %s\nin %s", w, got)
				}
			}
			for _, n := range tt.not {
				if strings.Contains(got, n) {
					t.Errorf("has %s\nin %s", n, got)
				}
			}
		})
	}
}

// TestRenderHostileContentIsInert feeds every place text can go with
// markup, event handlers and javascript: links; none may come out as
// markup or a link.
func TestRenderHostileContentIsInert(t *testing.T) {
	const evil = `<script>alert(1)</script><img src=x onerror=alert(2)>"'><a href=javascript:alert(3)>`
	quoted, _ := json.Marshal(evil)
	e := string(quoted)
	blocks := `[
	 {"type":"section","block_id":` + e + `,"text":{"type":"mrkdwn","text":` + e + `},
	  "fields":[{"type":"plain_text","text":` + e + `}],
	  "accessory":{"type":"button","action_id":` + e + `,"text":{"type":"plain_text","text":` + e + `},"url":"javascript:alert(4)","style":` + e + `}},
	 {"type":"context","elements":[{"type":"mrkdwn","text":"<javascript:alert(5)|click me> <data:text/html;base64,PHNjcmlwdD4=|x>"}]},
	 {"type":"header","text":{"type":"plain_text","text":` + e + `}},
	 {"type":"rich_text","elements":[{"type":"rich_text_section","elements":[
	   {"type":"text","text":` + e + `,"style":{"bold":true}},
	   {"type":"link","url":"javascript:alert(6)","text":` + e + `},
	   {"type":"user","user_id":"U0EVIL"},
	   {"type":"emoji","name":` + e + `},
	   {"type":"date","timestamp":1795256100,"format":` + e + `,"fallback":` + e + `}]}]},
	 {"type":"actions","block_id":"a","elements":[{"type":"static_select","action_id":"s","placeholder":{"type":"plain_text","text":` + e + `},
	   "options":[{"text":{"type":"plain_text","text":` + e + `},"value":` + e + `}]}]},
	 {"type":"input","block_id":` + e + `,"label":{"type":"plain_text","text":` + e + `},"hint":{"type":"plain_text","text":` + e + `},
	  "element":{"type":"plain_text_input","action_id":` + e + `,"initial_value":` + e + `,"placeholder":{"type":"plain_text","text":` + e + `}}},
	 {"type":"input","block_id":"r","label":{"type":"plain_text","text":"r"},
	  "element":{"type":"radio_buttons","action_id":"r","options":[{"text":{"type":"mrkdwn","text":` + e + `},"value":` + e + `,"description":{"type":"mrkdwn","text":` + e + `}}]}},
	 {"type":` + e + `}
	]`
	got, err := blockRenderer{names: testNames, interactive: true, formID: "f"}.render(json.RawMessage(blocks))
	if err != nil {
		t.Fatal(err)
	}
	html := string(got)
	if len(html) < 1000 {
		t.Fatalf("suspiciously little HTML: %s", html)
	}
	// Every tag in the output is one the renderer writes itself.
	allowed := map[string]bool{"div": true, "span": true, "b": true, "i": true, "s": true, "code": true, "pre": true, "br": true,
		"button": true, "select": true, "option": true, "label": true, "input": true, "textarea": true, "p": true, "h3": true,
		"hr": true, "ul": true, "ol": true, "li": true, "blockquote": true, "time": true, "fieldset": true, "legend": true,
		"small": true, "a": true}
	for _, m := range regexp.MustCompile(`<([a-zA-Z0-9]+)`).FindAllStringSubmatch(html, -1) {
		if !allowed[strings.ToLower(m[1])] {
			t.Errorf("unexpected <%s> in the output", m[1])
		}
	}
	for _, bad := range []string{"<script", "<img", "javascript:", "data:text", " onerror=", " onclick="} {
		for _, loc := range regexp.MustCompile(regexp.QuoteMeta(bad)).FindAllStringIndex(html, -1) {
			// Allowed only as escaped text (inside an element's content or
			// an attribute value, never as markup).
			before := html[max(0, loc[0]-200):loc[0]]
			if bad == "<script" || bad == "<img" || !insideText(before) {
				t.Errorf("%q appears as markup near: …%s…", bad, html[max(0, loc[0]-60):min(len(html), loc[1]+40)])
			}
		}
	}
	if strings.Contains(html, `href="javascript`) || strings.Contains(html, `href="data`) {
		t.Errorf("a dangerous href got through: %s", html)
	}
}

// insideText reports whether the text just before a match is inside an
// element's content (the last '>' after the last '<') or a quoted
// attribute value, which is where escaped user text belongs.
func insideText(before string) bool {
	lt, gt := strings.LastIndex(before, "<"), strings.LastIndex(before, ">")
	if gt > lt || lt < 0 {
		return true
	}
	return strings.Count(before[lt:], `"`)%2 == 1
}
