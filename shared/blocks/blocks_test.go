package blocks

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coffeebuddy/coffeebuddy/shared/coffee"
	"github.com/coffeebuddy/coffeebuddy/shared/store"
	"github.com/google/uuid"
	"github.com/slack-go/slack"
)

var update = flag.Bool("update", false, "rewrite golden files")

// golden compares v's indented JSON with testdata/name.golden.
func golden(t *testing.T, name string, v any) {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // keep <!date…> readable in the golden file
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	got := buf.Bytes()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./blocks -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from golden file (go test ./blocks -update to accept):\n%s", name, got)
	}
}

var sampleRun = coffee.Run{
	ID:              uuid.MustParse("0b0c2a36-3d39-4c47-9d1f-8f0e1a1f2b3c"),
	TeamID:          "T0001",
	ChannelID:       "C0001",
	InitiatorUserID: "U0ALICE",
	Status:          coffee.StatusActive,
	LastCallAt:      time.Date(2026, 11, 21, 10, 15, 0, 0, time.UTC),
	CreatedAt:       time.Date(2026, 11, 21, 10, 5, 0, 0, time.UTC),
}

func TestRunMessageGolden(t *testing.T) {
	golden(t, "run_message", slack.Blocks{BlockSet: RunMessage(sampleRun, nil)})
	orders := []coffee.Order{
		{UserID: "U0ALICE", Drink: "latte", Size: "large", Customizations: "oat milk"},
		{UserID: "U0BOB", Drink: "mocha", Size: "small", Customizations: "<!channel> *bold* & <@U0EVE>"},
		{UserID: "U0CAROL", Drink: "latte", Size: "large"},
	}
	withOrders := sampleRun
	withOrders.VolunteerUserID = "U0BOB"
	golden(t, "run_message_orders", slack.Blocks{BlockSet: RunMessage(withOrders, orders)})
	closed := sampleRun
	closed.Status, closed.RunnerUserID, closed.AssignmentReason = coffee.StatusClosed, "U0CAROL", "0 runs in the last 30 days; team median 2"
	golden(t, "run_message_closed", slack.Blocks{BlockSet: RunMessage(closed, orders)})
	empty := sampleRun
	empty.Status = coffee.StatusClosed
	golden(t, "run_message_closed_empty", slack.Blocks{BlockSet: RunMessage(empty, nil)})
	done := closed
	done.Status = coffee.StatusCompleted
	golden(t, "run_message_completed", slack.Blocks{BlockSet: RunMessage(done, orders)})
	cancelled := sampleRun
	cancelled.Status = coffee.StatusCancelled
	golden(t, "run_message_cancelled", slack.Blocks{BlockSet: RunMessage(cancelled, orders)})
}

func TestOrderModalGolden(t *testing.T) {
	meta := OrderMetadata{TeamID: "T0001", ChannelID: "C0001"}
	golden(t, "order_modal_empty", OrderModal(meta, Prefill{}))
	golden(t, "order_modal_prefilled", OrderModal(meta, Prefill{Drink: "latte", Size: "large"}))
	golden(t, "order_modal_editing", OrderModal(meta, Prefill{Drink: "mocha", Size: "small", Customizations: "oat milk <!here>", Editing: true}))
}

func TestRunMessageShowsLastCallInReadersTimeZone(t *testing.T) {
	header := RunMessage(sampleRun, nil)[0].(*slack.SectionBlock).Text.Text
	want := fmt.Sprintf("<!date^%d^{time}|10:15 UTC>", sampleRun.LastCallAt.Unix())
	if !strings.Contains(header, want) {
		t.Fatalf("run message header %q lacks %s", header, want)
	}
}

func TestEscape(t *testing.T) {
	tests := []struct{ in, want string }{
		{"<!channel>", "&lt;!channel&gt;"},
		{"<@U123>", "&lt;@U123&gt;"},
		{"*bold* _it_", "*bold* _it_"},
		{"a & b", "a &amp; b"},
		{"&lt;", "&amp;lt;"},
		{"☕☕", "☕☕"},
	}
	for _, tt := range tests {
		if got := Escape(tt.in); got != tt.want {
			t.Errorf("Escape(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestOrderModalJSONMatchesMarshal proves the spliced template is byte for
// byte what encoding the modal directly gives.
func TestOrderModalJSONMatchesMarshal(t *testing.T) {
	metas := []OrderMetadata{
		{TeamID: "T1", ChannelID: "C1"},
		{TeamID: `T"quoted"`, ChannelID: `C\back<slash>&`},
		{TeamID: "T☕", ChannelID: ""},
	}
	pres := []Prefill{{}, {Drink: "latte", Size: "large"}, {Drink: "mocha"}, {Drink: "tea", Size: "huge"},
		{Drink: "latte", Size: "small", Customizations: "extra hot", Editing: true}, {Drink: "latte", Size: "small", Editing: true}}
	for _, m := range metas {
		for _, p := range pres {
			for range 2 { // second call uses the cached template
				want, _ := json.Marshal(OrderModal(m, p))
				if got := OrderModalJSON(m, p); !bytes.Equal(got, want) {
					t.Fatalf("OrderModalJSON(%+v, %+v)\n got %s\nwant %s", m, p, got, want)
				}
			}
		}
	}
}

// TestUntrustedTextIsLiteral renders hostile customizations: they travel
// only inside plain rich-text elements, verbatim, never as mrkdwn.
func TestUntrustedTextIsLiteral(t *testing.T) {
	hostile := []string{"<!channel>", "<!here>", "<@U0EVE>", "<#C0SECRET>", "*bold* _it_ ~s~ `c`",
		"<https://evil.example|click>", strings.Repeat("☕", 200), "a & b < c > d", "'; DROP TABLE orders; --"}
	for _, h := range hostile {
		o := coffee.Order{UserID: "U1", Drink: "latte", Size: "small", Customizations: h}
		bl := RunMessage(sampleRun, []coffee.Order{o})
		var found bool
		for _, b := range bl {
			switch b := b.(type) {
			case *slack.SectionBlock:
				if strings.Contains(b.Text.Text, h) {
					t.Errorf("%q reached a mrkdwn section", h)
				}
			case *slack.RichTextBlock:
				item := b.Elements[0].(*slack.RichTextList).Elements[0].(*slack.RichTextSection)
				text := item.Elements[1].(*slack.RichTextSectionTextElement).Text
				found = text == ": Small Latte ("+h+")"
			}
		}
		if !found {
			t.Errorf("%q not shown verbatim in a plain text element", h)
		}
	}
}

func TestHistoryGolden(t *testing.T) {
	at := time.Date(2026, 11, 20, 9, 30, 0, 0, time.UTC)
	entries := []store.HistoryEntry{
		{CreatedAt: at, Status: coffee.StatusCompleted, RunnerID: "U1", RunnerName: "Alice <script>", Orders: 4},
		{CreatedAt: at.Add(-time.Hour), Status: coffee.StatusCancelled, Orders: 1},
		{CreatedAt: at.Add(-2 * time.Hour), Status: coffee.StatusClosed, RunnerID: "U2", RunnerName: "Bob", Orders: 0},
	}
	golden(t, "history_page1", History(entries, 1, 13))
	golden(t, "history_empty", History(nil, 1, 0))
	golden(t, "history_past_end", History(nil, 5, 13))
}

// TestHistoryCounts: counts read as English, never "1 runs" or "(s)".
func TestHistoryCounts(t *testing.T) {
	one := []store.HistoryEntry{{CreatedAt: time.Date(2026, 11, 20, 9, 30, 0, 0, time.UTC), Status: coffee.StatusCompleted, Orders: 1}}
	for _, tc := range []struct {
		name          string
		got           Ephemeral
		want, notWant string
	}{
		{"one run", History(one, 1, 1), "(page 1 of 1, 1 run)", "1 runs"},
		{"one order", History(one, 1, 1), "1 order,", "1 orders"},
		{"past the one page", History(nil, 2, 1), "has 1 page of coffee runs", "(s)"},
		{"past two pages", History(nil, 3, 11), "has 2 pages of coffee runs", "(s)"},
	} {
		if !strings.Contains(tc.got.Text, tc.want) || strings.Contains(tc.got.Text, tc.notWant) {
			t.Errorf("%s: %q, want %q and no %q", tc.name, tc.got.Text, tc.want, tc.notWant)
		}
	}
}
