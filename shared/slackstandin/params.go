package slackstandin

import (
	"bytes"
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"net/url"
	"strings"
)

// params are the arguments of one request, from a form body, a JSON body and
// the query string, the way Slack accepts them.
type params struct {
	str    map[string]string
	raw    map[string]json.RawMessage // JSON bodies: top-level fields verbatim
	isJSON bool
}

var errBadJSON = errors.New("invalid json body")

// parseParams reads Slack-style arguments. Form bodies carry structured
// arguments (blocks, view, attachments) as JSON strings; JSON bodies carry
// them as JSON values.
func parseParams(r *http.Request, body []byte) (params, error) {
	p := params{str: map[string]string{}, raw: map[string]json.RawMessage{}}
	for k, v := range r.URL.Query() {
		if len(v) > 0 {
			p.str[k] = v[0]
		}
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	trimmed := bytes.TrimSpace(body)
	switch {
	case len(trimmed) == 0:
	case ct == "application/json" || (ct == "" && trimmed[0] == '{'):
		p.isJSON = true
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(trimmed, &obj); err != nil {
			return p, errBadJSON
		}
		for k, v := range obj {
			p.raw[k] = v
			p.str[k] = renderJSONValue(v)
		}
	default:
		vals, err := url.ParseQuery(string(body))
		if err != nil {
			return p, err
		}
		for k, v := range vals {
			if len(v) > 0 {
				p.str[k] = v[0]
			}
		}
	}
	return p, nil
}

// renderJSONValue renders a JSON value as a string parameter: strings
// unquoted, null as "", everything else as compact JSON.
func renderJSONValue(v json.RawMessage) string {
	v = bytes.TrimSpace(v)
	if len(v) == 0 || string(v) == "null" {
		return ""
	}
	if v[0] == '"' {
		var s string
		if json.Unmarshal(v, &s) == nil {
			return s
		}
	}
	var buf bytes.Buffer
	if json.Compact(&buf, v) == nil {
		return buf.String()
	}
	return string(v)
}

func (p params) get(k string) string { return p.str[k] }

func (p params) has(k string) bool {
	_, ok := p.str[k]
	return ok
}

// json returns a structured argument as JSON: the JSON value itself for JSON
// bodies, the parsed string for form bodies. ok is false when absent or not
// valid JSON.
func (p params) json(k string) (json.RawMessage, bool) {
	if v, ok := p.raw[k]; ok {
		v = bytes.TrimSpace(v)
		if len(v) > 0 && v[0] == '"' { // a JSON string holding JSON is accepted too
			var s string
			if json.Unmarshal(v, &s) == nil && json.Valid([]byte(s)) {
				return compact([]byte(s)), true
			}
			return nil, false
		}
		if string(v) == "null" {
			return nil, false
		}
		return compact(v), true
	}
	s, ok := p.str[k]
	if !ok || strings.TrimSpace(s) == "" || !json.Valid([]byte(s)) {
		return nil, false
	}
	return compact([]byte(s)), true
}

func (p params) bool(k string) bool {
	switch strings.ToLower(p.str[k]) {
	case "true", "1", "yes":
		return true
	}
	return false
}

func compact(b []byte) json.RawMessage {
	var buf bytes.Buffer
	if json.Compact(&buf, b) != nil {
		return json.RawMessage(bytes.Clone(b))
	}
	return buf.Bytes()
}

// isEmptyJSONArray reports whether raw is "[]" (or absent).
func isEmptyJSONArray(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return len(t) == 0 || string(t) == "[]"
}
