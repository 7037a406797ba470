package auditquery_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/coffeebuddy/coffeebuddy/shared/auditquery"
	"github.com/google/uuid"
)

func ptr(s string) *string { return &s }

// TestAppendJSONMatchesEncodingJSON: the hand-written encoder says what
// encoding/json says, for awkward strings too, with details untouched.
func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	run := uuid.MustParse("0b5c7c4e-8f5a-4c55-9a3f-5d2d8a5f3b10")
	rows := []auditquery.Row{
		{ID: 1, OccurredAt: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), EventType: "run_created", Details: json.RawMessage(`{}`)},
		{ID: 9007199254740993, OccurredAt: time.Date(2026, 3, 1, 1, 2, 3, 456789000, time.UTC), EventType: "order_placed",
			UserID: ptr(`quote" back\slash`), TeamID: ptr("tab\tnew\nline\rcr\x00nul\x1fus"), ChannelID: ptr("<script>&amp;</script> é 😀 \u2028\u2029"),
			RunID: &run, CEID: ptr("bad utf8 \xff\xfe end"), Details: json.RawMessage(`{"a": [1, 2.50, "x\n"], "b": {"c": null}}`)},
	}
	for _, r := range rows {
		got := r.AppendJSON(nil)
		if !json.Valid(got) {
			t.Fatalf("invalid JSON: %s", got)
		}
		want, _ := json.Marshal(r)
		var g, w map[string]any
		if err := json.Unmarshal(got, &g); err != nil {
			t.Fatal(err)
		}
		_ = json.Unmarshal(want, &w)
		if !reflect.DeepEqual(g, w) {
			t.Errorf("AppendJSON = %s\nencoding/json = %s", got, want)
		}
		if !strings.Contains(string(got), `"details":`+string(r.Details)+`}`) {
			t.Errorf("details not verbatim: %s", got)
		}
		if strings.ContainsAny(string(got), "\n\r") || strings.Contains(string(got), "\u2028") {
			t.Errorf("raw line breaks in an NDJSON line: %q", got)
		}
	}
}

// FuzzAppendString: any string survives the encoder as encoding/json would
// carry it.
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain", `"\`, "\x00\x1f\x7f", "\u2028", "é😀", "\xff", "<>&"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r := auditquery.Row{EventType: s, Details: json.RawMessage(`{}`)}
		var back struct {
			EventType string `json:"event_type"`
		}
		b := r.AppendJSON(nil)
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("%q: %v: %s", s, err, b)
		}
		want := s
		if !utf8.ValidString(s) {
			want = strings.ToValidUTF8(s, "\ufffd")
			// encoding/json replaces each invalid byte; ToValidUTF8 runs.
			var w struct {
				EventType string `json:"event_type"`
			}
			m, _ := json.Marshal(struct {
				EventType string `json:"event_type"`
			}{s})
			_ = json.Unmarshal(m, &w)
			want = w.EventType
		}
		if back.EventType != want {
			t.Fatalf("%q came back as %q, want %q", s, back.EventType, want)
		}
	})
}
