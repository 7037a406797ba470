package blocks

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/coffeebuddy/coffeebuddy/shared/coffee"
	"github.com/slack-go/slack"
)

func TestNoticesGolden(t *testing.T) {
	golden(t, "notices_last_call_warning", LastCallWarning(sampleRun))
	golden(t, "notices_cancel", CancelNotice("U0ALICE", "meeting moved <!channel> *bold* & <@U0EVE>", []string{"U0ALICE", "U0BOB", "U0CAROL"}))
	golden(t, "notices_cancel_no_reason_no_orders", CancelNotice("U0ALICE", "  ", nil))
	golden(t, "notices_run_already_open", map[string]string{
		"someone else's":          RunAlreadyOpenNotice(sampleRun, "U0BOB", false),
		"someone else's, asked 5": RunAlreadyOpenNotice(sampleRun, "U0BOB", true),
		"own":                     RunAlreadyOpenNotice(sampleRun, sampleRun.InitiatorUserID, false),
	})
	golden(t, "notices_cannot_post", map[string]string{
		"not_in_channel":    CannotPostNotice("not_in_channel"),
		"channel_not_found": CannotPostNotice("channel_not_found"),
		"is_archived":       CannotPostNotice("is_archived"),
		"hostile code":      CannotPostNotice("<!channel>"),
	})
}

func TestNoticesCancelRefusalsGolden(t *testing.T) {
	closed := sampleRun
	closed.Status, closed.RunnerUserID = coffee.StatusClosed, "U0CAROL"
	refusals := map[string]Ephemeral{}
	for name, c := range map[string]struct {
		err error
		run coffee.Run
	}{
		"no_run":                {coffee.ErrRunNotFound, coffee.Run{}},
		"completed":             {coffee.ErrAlreadyCompleted, closed},
		"not_allowed":           {coffee.ErrNotAllowed, closed},
		"not_allowed_no_runner": {coffee.ErrNotAllowed, sampleRun},
	} {
		e, ok := CancelRefusal(fmt.Errorf("store: %w", c.err), c.run)
		if !ok {
			t.Fatalf("%s: not a refusal", name)
		}
		refusals[name] = e
	}
	golden(t, "notices_cancel_refusals", refusals)
	if _, ok := CancelRefusal(fmt.Errorf("connection reset"), sampleRun); ok {
		t.Error("an infrastructure error was treated as a refusal")
	}
	if _, ok := CancelRefusal(nil, sampleRun); ok {
		t.Error("success was treated as a refusal")
	}
}

func TestLastCallWarningUsesReadersTimeZone(t *testing.T) {
	n := LastCallWarning(sampleRun)
	want := fmt.Sprintf(":alarm_clock: Last call <!date^%d^{time}|10:15 UTC>! Get your orders in.", sampleRun.LastCallAt.Unix())
	if n.Text != want {
		t.Fatalf("text %q, want %q", n.Text, want)
	}
	if got := n.Blocks[0].(*slack.SectionBlock).Text.Text; got != want {
		t.Fatalf("block %q, want %q", got, want)
	}
}

// TestCancelReasonIsLiteral renders hostile reasons: in the blocks they are
// one plain rich-text element, verbatim; in the fallback text they are
// escaped, so nothing in them is a mention or a link.
func TestCancelReasonIsLiteral(t *testing.T) {
	hostile := []string{"<!channel>", "<!here>", "<@U0EVE>", "<#C0SECRET>", "*bold* _it_ ~s~ `c`",
		"<https://evil.example|click>", strings.Repeat("☕", 200), "a & b < c > d", "'; DROP TABLE coffee_runs; --"}
	for _, h := range hostile {
		n := CancelNotice("U1", h, []string{"U2"})
		sec := n.Blocks[0].(*slack.RichTextBlock).Elements[0].(*slack.RichTextSection)
		var found bool
		for _, el := range sec.Elements {
			if te, ok := el.(*slack.RichTextSectionTextElement); ok && te.Text == h {
				found = te.Style == nil
			}
		}
		if !found {
			t.Errorf("%q not shown verbatim in a plain text element", h)
		}
		if want := "(reason: " + Escape(h) + ")"; !strings.Contains(n.Text, want) {
			t.Errorf("fallback %q lacks %q", n.Text, want)
		}
		if strings.ContainsAny(h, "<>") && strings.Contains(n.Text, h) {
			t.Errorf("fallback %q carries %q unescaped", n.Text, h)
		}
		// Only the canceller and the orderer are mentioned.
		raw, _ := json.Marshal(n.Blocks)
		if c := strings.Count(string(raw), `"type":"user"`); c != 2 {
			t.Errorf("%q: %d user elements, want 2", h, c)
		}
	}
}

func TestCancelNoticeClipsHugeReasons(t *testing.T) {
	n := CancelNotice("U1", strings.Repeat("x", 5000), nil)
	raw, _ := json.Marshal(n.Blocks)
	if len(raw) > 2000 || len(n.Text) > 1000 {
		t.Fatalf("notice of %d bytes (text %d) for a 5000-character reason", len(raw), len(n.Text))
	}
	if !strings.Contains(n.Text, strings.Repeat("x", MaxReasonShown-1)+"…") {
		t.Fatal("clipped reason lacks its ellipsis")
	}
}
