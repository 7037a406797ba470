package auditquery_test

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coffeebuddy/coffeebuddy/shared/auditquery"
)

// TestNDJSONFlushesEvery1000Rows: lines reach the client (and its Flusher)
// in batches of 1,000 rows, Flush sends the rest, and Sent counts only the
// rows that left, which is what an access record reports.
func TestNDJSONFlushesEvery1000Rows(t *testing.T) {
	t.Parallel()
	rec := httptest.NewRecorder()
	out := auditquery.NewNDJSON(rec)
	row := auditquery.Row{OccurredAt: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), EventType: "order_placed", Details: json.RawMessage(`{"drink": "latte"}`)}
	for i := 1; i <= 1500; i++ {
		row.ID = int64(i)
		if err := out.Write(&row); err != nil {
			t.Fatal(err)
		}
		switch i {
		case 999:
			// A full 64 KiB buffer goes to the connection on its own; the
			// Flusher and Sent wait for the 1,000th row.
			if rec.Flushed || out.Sent() != 0 {
				t.Fatalf("after 999 rows: flushed %v, sent %d; want neither yet", rec.Flushed, out.Sent())
			}
		case 1000:
			if !rec.Flushed || strings.Count(rec.Body.String(), "\n") != 1000 || out.Sent() != 1000 {
				t.Fatalf("after 1000 rows: flushed %v, %d lines, sent %d; want 1000 sent and flushed", rec.Flushed, strings.Count(rec.Body.String(), "\n"), out.Sent())
			}
		}
	}
	if out.Sent() != 1000 {
		t.Fatalf("before Flush: sent %d, want 1000 (500 still buffered)", out.Sent())
	}
	if err := out.Flush(); err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(bytes.TrimSuffix(rec.Body.Bytes(), []byte("\n")), []byte("\n"))
	if len(lines) != 1500 || out.Sent() != 1500 {
		t.Fatalf("%d lines, sent %d; want 1500", len(lines), out.Sent())
	}
	for i, l := range lines {
		var got auditquery.Row
		if err := json.Unmarshal(l, &got); err != nil || got.ID != int64(i+1) {
			t.Fatalf("line %d: %s (%v)", i+1, l, err)
		}
	}
}
