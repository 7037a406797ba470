package slackstandin

import (
	"bytes"
	"encoding/json"
	"html/template"
	"net/http"
	"slices"
	"strings"
)

// The page is rendered with html/template: every message text is untrusted
// user input and is auto-escaped.
var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="refresh" content="2">
<title>CoffeeBuddy · local Slack</title>
<style>
 body{font:14px/1.45 system-ui,sans-serif;margin:0;background:#f8f8f8;color:#1d1c1d}
 header{background:#3f0e40;color:#fff;padding:.6em 1.2em}
 header h1{font-size:1.1em;margin:0} header p{margin:.2em 0 0;opacity:.8;font-size:.9em}
 main{display:grid;grid-template-columns:minmax(0,2fr) minmax(0,1fr);gap:1em;padding:1em}
 section{background:#fff;border:1px solid #ddd;border-radius:6px;padding:.6em 1em;margin-bottom:1em}
 h2{font-size:1em;margin:.2em 0 .6em}
 .msg{margin:.4em 0;padding:.3em .5em;border-radius:4px}
 .msg:hover{background:#f4f4f4}
 .who{font-weight:600} .when,.note{color:#777;font-size:.85em;margin-left:.4em}
 .text{white-space:pre-wrap}
 .eph{background:#fff8e1;border-left:3px solid #f2c744}
 .thread{margin-left:1.6em;border-left:2px solid #ddd;padding-left:.6em}
 .ctx{color:#616061;font-size:.9em;white-space:pre-wrap}
 .hdr{font-weight:700;font-size:1.05em}
 .btn{display:inline-block;border:1px solid #bbb;border-radius:4px;padding:0 .5em;margin:.2em .3em 0 0;font-size:.9em;background:#fafafa}
 hr{border:0;border-top:1px solid #eee}
 .err{color:#b00020} .closed{opacity:.55}
 table{border-collapse:collapse;width:100%;font-size:.85em} td{padding:.1em .3em;border-bottom:1px solid #eee}
 .empty{color:#888;font-style:italic}
 code{font-size:.9em}
</style>
</head>
<body>
<header><h1>☕ CoffeeBuddy — local Slack stand-in</h1>
<p>Web API at <code>{{.APIURL}}</code> · refreshes every 2 s · play users with <code>POST /_standin/command</code> and <code>/_standin/interaction</code></p></header>
<main>
<div>
{{range .Channels}}<section>
<h2>{{.Label}}</h2>
{{range .Messages}}{{template "msg" .}}{{else}}<p class="empty">No messages yet.</p>{{end}}
</section>
{{else}}<section><p class="empty">Nothing has been posted yet. Type <code>/coffee</code> through the simulate endpoint to start a run.</p></section>{{end}}
</div>
<div>
<section><h2>Modals</h2>
{{range .Views}}<div class="msg{{if .Closed}} closed{{end}}">
<span class="who">{{.Title}}</span><span class="note">for {{.User}}{{if .Closed}} · closed{{end}} · {{.ID}}</span>
{{range .Blocks}}{{template "block" .}}{{end}}
{{range .Errors}}<div class="err">⚠ {{.}}</div>{{end}}
</div>{{else}}<p class="empty">No modal opened yet.</p>{{end}}
</section>
<section><h2>Recent Web API calls</h2>
<table>{{range .Calls}}<tr><td>{{.When}}</td><td><code>{{.Method}}</code></td><td>{{.Status}}</td><td class="err">{{.Error}}</td></tr>{{else}}<tr><td class="empty">none</td></tr>{{end}}</table>
</section>
</div>
</main>
</body>
</html>
{{define "msg"}}<div class="msg{{if .Ephemeral}} eph{{end}}">
<span class="who">{{.Author}}</span><span class="when">{{.When}}</span>{{if .Edited}}<span class="note">(edited)</span>{{end}}{{if .Ephemeral}}<span class="note">only visible to {{.Recipient}}</span>{{end}}
{{if .Blocks}}{{range .Blocks}}{{template "block" .}}{{end}}{{else}}<div class="text">{{.Text}}</div>{{end}}
{{if .Replies}}<div class="thread">{{range .Replies}}{{template "msg" .}}{{end}}</div>{{end}}
</div>{{end}}
{{define "block"}}{{if eq .Kind "header"}}<div class="hdr">{{.Text}}</div>{{else if eq .Kind "context"}}<div class="ctx">{{.Text}}</div>{{else if eq .Kind "divider"}}<hr>{{else if eq .Kind "actions"}}<div>{{range .Buttons}}<span class="btn">{{.}}</span>{{end}}</div>{{else if .Text}}<div class="text">{{.Text}}</div>{{end}}{{end}}
`))

type pageData struct {
	APIURL   string
	Channels []pageChannel
	Views    []pageView
	Calls    []pageCall
}

type pageChannel struct {
	Label    string
	Messages []*pageMessage
}

type pageMessage struct {
	Author, When, Text string
	Blocks             []renderedBlock
	Edited, Ephemeral  bool
	Recipient          string
	Replies            []*pageMessage
}

type pageView struct {
	ID, Title, User string
	Closed          bool
	Blocks          []renderedBlock
	Errors          []string
}

type pageCall struct {
	When, Method, Error string
	Status              int
}

func (s *Server) serveIndex(w http.ResponseWriter, _ *http.Request) {
	data := s.pageData()
	var buf bytes.Buffer
	if err := pageTemplate.Execute(&buf, data); err != nil {
		s.log.Error("rendering page", "err", err)
		http.Error(w, "rendering page failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(buf.Bytes())
}

func (s *Server) pageData() pageData {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := pageData{APIURL: s.URL() + "/api/"}

	order := slices.Clone(s.st.order)
	// Channels first, then DMs, each in order of first use.
	slices.SortStableFunc(order, func(a, b string) int { return rank(a) - rank(b) })
	for _, id := range order {
		label := s.place(id)
		if !strings.HasPrefix(id, "D") && !strings.HasPrefix(id, "G") {
			label = "#" + s.channelName(id) + " (" + id + ")"
		}
		pc := pageChannel{Label: label}
		all := slices.Clone(s.st.channels[id].msgs)
		for _, e := range s.st.ephemerals {
			if e.Channel == id {
				all = append(all, e)
			}
		}
		byTS := map[string]*pageMessage{}
		for _, m := range sortedMessages(all) {
			pm := s.pageMessage(m)
			if parent, ok := byTS[m.ThreadTS]; ok && m.ThreadTS != m.TS {
				parent.Replies = append(parent.Replies, pm)
				continue
			}
			if !m.Ephemeral {
				byTS[m.TS] = pm
			}
			pc.Messages = append(pc.Messages, pm)
		}
		d.Channels = append(d.Channels, pc)
	}

	for _, v := range slices.Backward(s.st.views) {
		pv := pageView{ID: v.ID, Title: v.Title, User: "@" + s.displayName(v.User), Closed: v.Closed}
		if v.User == "" {
			pv.User = "an unknown user"
		}
		pv.Blocks = s.humanBlocks(v.Blocks)
		for _, k := range sortedKeys(v.Errors) {
			pv.Errors = append(pv.Errors, k+": "+v.Errors[k])
		}
		d.Views = append(d.Views, pv)
	}

	calls := s.calls
	if len(calls) > 25 {
		calls = calls[len(calls)-25:]
	}
	for _, c := range slices.Backward(calls) {
		var r struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(c.Response, &r)
		d.Calls = append(d.Calls, pageCall{When: c.At.Local().Format("15:04:05"), Method: c.Method, Status: c.Status, Error: r.Error})
	}
	return d
}

func rank(id string) int {
	switch {
	case strings.HasPrefix(id, "D"):
		return 2
	case strings.HasPrefix(id, "G"):
		return 1
	}
	return 0
}

func (s *Server) pageMessage(m *Message) *pageMessage {
	author := m.Username
	if author == "" {
		author = s.displayName(m.User)
	}
	return &pageMessage{
		Author:    author,
		When:      tsTime(m.TS).Local().Format("15:04:05"),
		Text:      s.humanize(m.Text),
		Blocks:    s.humanBlocks(m.Blocks),
		Edited:    m.Edited,
		Ephemeral: m.Ephemeral,
		Recipient: "@" + s.displayName(m.Recipient),
	}
}

func (s *Server) humanBlocks(raw json.RawMessage) []renderedBlock {
	if len(raw) == 0 {
		return nil
	}
	blocks := parseBlocks(raw)
	for i := range blocks {
		blocks[i].Text = s.humanize(blocks[i].Text)
	}
	return blocks
}

// stateSnapshot is the JSON answer of GET /_standin/state.
type stateSnapshot struct {
	APIURL     string               `json:"api_url"`
	Channels   map[string][]Message `json:"channels"`
	Ephemerals []Message            `json:"ephemerals"`
	Views      []View               `json:"views"`
}

func (s *Server) serveState(w http.ResponseWriter, r *http.Request) {
	snap := stateSnapshot{APIURL: s.APIURL(), Channels: map[string][]Message{}}
	for _, id := range s.Channels() {
		if ch := r.URL.Query().Get("channel"); ch == "" || ch == id {
			snap.Channels[id] = s.Messages(id)
		}
	}
	snap.Ephemerals = s.Ephemerals(r.URL.Query().Get("user"))
	snap.Views = s.Views(r.URL.Query().Get("user"))
	out, err := json.MarshalIndent(snap, "", "  ")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	writeJSON(w, http.StatusOK, out)
}
