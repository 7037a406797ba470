package main

import (
	"fmt"
	"mime"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/coffeebuddy/coffeebuddy/shared/audit"
	"github.com/coffeebuddy/coffeebuddy/shared/auditquery"
	"github.com/google/uuid"
)

// Page sizes.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// maxIDLen bounds the free-text id filters (Slack ids are ~11 characters;
// OAuth subjects may be longer).
const maxIDLen = 255

// Param describes one query parameter of GET /api/v1/audit. Params is the
// table the parser follows and the OpenAPI document is checked against.
type Param struct {
	Name       string
	Required   bool
	Repeatable bool
	// Kind: "date" (RFC 3339 or YYYY-MM-DD, UTC), "enum", "string",
	// "uuid", "integer".
	Kind    string
	Enum    []string
	Min     int // integer
	Max     int // integer
	Default int // integer; 0 for none
	MaxLen  int // string
}

// Params are the query parameters of GET /api/v1/audit; any other is a 400.
var Params = []Param{
	{Name: "start_date", Required: true, Kind: "date"},
	{Name: "end_date", Required: true, Kind: "date"},
	{Name: "event_type", Repeatable: true, Kind: "enum", Enum: audit.Types},
	{Name: "user_id", Kind: "string", MaxLen: maxIDLen},
	{Name: "run_id", Kind: "uuid"},
	{Name: "channel_id", Kind: "string", MaxLen: maxIDLen},
	{Name: "team_id", Kind: "string", MaxLen: maxIDLen},
	{Name: "limit", Kind: "integer", Min: 1, Max: MaxLimit, Default: DefaultLimit},
	{Name: "cursor", Kind: "string", MaxLen: 128},
	{Name: "format", Kind: "enum", Enum: []string{"json", "ndjson"}},
}

// NDJSON is the export media type.
const NDJSON = "application/x-ndjson"

// request is a parsed, valid query.
type request struct {
	filter auditquery.Filter
	limit  int
	cursor string // raw; decoded against filter by the handler
	ndjson bool
}

// InvalidParam is one entry of the problem's "invalid-params" extension.
type InvalidParam struct {
	Name   string `json:"name"`
	Reason string `json:"reason"`
}

// parseRequest reads q (and the Accept header) into a request, or returns
// every problem found, one per parameter.
func parseRequest(q url.Values, accept string) (request, []InvalidParam) {
	var bad []InvalidParam
	fail := func(name, format string, a ...any) {
		bad = append(bad, InvalidParam{Name: name, Reason: fmt.Sprintf(format, a...)})
	}
	known := map[string]Param{}
	for _, p := range Params {
		known[p.Name] = p
	}
	for name, vs := range q {
		p, ok := known[name]
		switch {
		case !ok:
			fail(clip(name), "unknown query parameter")
		case len(vs) > 1 && !p.Repeatable:
			fail(name, "given %d times; it takes one value", len(vs))
		}
	}
	for _, p := range Params {
		if p.Required && len(q[p.Name]) == 0 {
			fail(p.Name, "required")
		}
		for _, v := range q[p.Name] {
			if v == "" {
				fail(p.Name, "empty")
			}
		}
	}
	if len(bad) > 0 {
		return request{}, bad // the rest would only repeat these
	}

	r := request{limit: DefaultLimit}
	var err error
	if r.filter.Start, err = parseDate(q.Get("start_date")); err != nil {
		fail("start_date", "%v", err)
	}
	if r.filter.End, err = parseDate(q.Get("end_date")); err != nil {
		fail("end_date", "%v", err)
	}
	if len(bad) == 0 {
		switch {
		case !r.filter.End.After(r.filter.Start):
			fail("end_date", "must be after start_date (the range is [start_date, end_date))")
		case r.filter.End.Sub(r.filter.Start) > auditquery.MaxRange:
			fail("end_date", "the range exceeds 366 days; split it into several queries")
		}
	}
	for _, t := range q["event_type"] {
		if !audit.Known(t) {
			fail("event_type", "%q is not an audit event type (see the API documentation for the list)", clip(t))
		}
	}
	r.filter.EventTypes = q["event_type"]
	for _, name := range []string{"user_id", "channel_id", "team_id"} {
		v := q.Get(name)
		if len(v) > maxIDLen || strings.IndexFunc(v, unicode.IsControl) >= 0 {
			fail(name, "at most %d characters, no control characters", maxIDLen)
		}
	}
	r.filter.UserID, r.filter.ChannelID, r.filter.TeamID = q.Get("user_id"), q.Get("channel_id"), q.Get("team_id")
	if s := q.Get("run_id"); s != "" {
		// The canonical 36-character form only: uuid.Parse also takes
		// braces, urn:uuid: and bare hex, which no client needs.
		id, err := uuid.Parse(s)
		if err != nil || len(s) != 36 {
			fail("run_id", "not a UUID such as 0b5c7c4e-8f5a-4c55-9a3f-5d2d8a5f3b10")
		}
		r.filter.RunID = id
	}

	switch q.Get("format") {
	case "json":
	case "ndjson":
		r.ndjson = true
	case "":
		r.ndjson = acceptsNDJSON(accept)
	default:
		fail("format", "must be json or ndjson")
	}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		switch {
		case err != nil || n < 1 || n > MaxLimit:
			fail("limit", "a whole number from 1 to %d", MaxLimit)
		case r.ndjson:
			fail("limit", "an export streams the whole range; limit applies to JSON pages")
		}
		r.limit = n
	}
	r.cursor = q.Get("cursor")
	if len(bad) > 0 {
		return request{}, bad
	}
	r.filter = r.filter.Normalize()
	return r, nil
}

// parseDate reads RFC 3339 (any offset, converted to UTC) or YYYY-MM-DD
// (midnight UTC).
func parseDate(s string) (time.Time, error) {
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		hint := ""
		if strings.Contains(s, " ") {
			hint = " (a '+' in a query string means a space: write it %2B)"
		}
		return time.Time{}, fmt.Errorf("not an RFC 3339 time or a YYYY-MM-DD date%s", hint)
	}
	return t.UTC(), nil
}

// acceptsNDJSON reports whether the Accept header asks for NDJSON.
func acceptsNDJSON(accept string) bool {
	for _, part := range strings.Split(accept, ",") {
		if mt, _, err := mime.ParseMediaType(strings.TrimSpace(part)); err == nil && mt == NDJSON {
			return true
		}
	}
	return false
}

// clip keeps echoed input short.
func clip(s string) string {
	if r := []rune(s); len(r) > 64 {
		return string(r[:64]) + "…"
	}
	return s
}
