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
	golden(t, "run_message", slack.Blocks{BlockSet: RunMessage(sampleRun)})
}

func TestOrderModalGolden(t *testing.T) {
	meta := OrderMetadata{TeamID: "T0001", ChannelID: "C0001"}
	golden(t, "order_modal_empty", OrderModal(meta, Prefill{}))
	golden(t, "order_modal_prefilled", OrderModal(meta, Prefill{Drink: "latte", Size: "large"}))
}

func TestRunMessageShowsLastCallInReadersTimeZone(t *testing.T) {
	header := RunMessage(sampleRun)[0].(*slack.SectionBlock).Text.Text
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
	pres := []Prefill{{}, {Drink: "latte", Size: "large"}, {Drink: "mocha"}, {Drink: "tea", Size: "huge"}}
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
