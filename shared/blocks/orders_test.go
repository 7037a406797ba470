package blocks

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/coffeebuddy/coffeebuddy/shared/coffee"
	"github.com/slack-go/slack"
)

const ordersHostile = "<!channel> <@U123> *bold* &<> '; DROP TABLE orders; --"

func TestOrderConfirmationGolden(t *testing.T) {
	latte := coffee.Order{UserID: "U0ALICE", Drink: "latte", Size: "large", Customizations: "oat milk"}
	plainMocha := coffee.Order{UserID: "U0BOB", Drink: "mocha", Size: "small"}
	hostile := coffee.Order{UserID: "U0EVE", Drink: "espresso", Size: "medium", Customizations: ordersHostile}
	tests := []struct {
		name     string
		kind     ConfirmKind
		order    coffee.Order
		fallback string
	}{
		{"orders_confirm_new", ConfirmNew, latte, "☕ Your order is in: Large Latte (oat milk)"},
		{"orders_confirm_edited", ConfirmEdited, latte, "☕ Order updated: Large Latte (oat milk)"},
		{"orders_confirm_usual", ConfirmUsual, plainMocha, "☕ Your usual is in: Small Mocha"},
		{"orders_confirm_hostile", ConfirmNew, hostile,
			"☕ Your order is in: Medium Espresso (&lt;!channel&gt; &lt;@U123&gt; *bold* &amp;&lt;&gt; '; DROP TABLE orders; --)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			golden(t, tt.name, slack.Blocks{BlockSet: OrderConfirmation(tt.kind, tt.order)})
			if got := OrderConfirmationText(tt.kind, tt.order); got != tt.fallback {
				t.Errorf("fallback = %q, want %q", got, tt.fallback)
			}
		})
	}
}

func TestKind(t *testing.T) {
	for _, tt := range []struct {
		edited, usual bool
		want          ConfirmKind
	}{{false, false, ConfirmNew}, {true, false, ConfirmEdited}, {false, true, ConfirmUsual}, {true, true, ConfirmUsual}} {
		if got := Kind(tt.edited, tt.usual); got != tt.want {
			t.Errorf("Kind(%v, %v) = %v, want %v", tt.edited, tt.usual, got, tt.want)
		}
	}
}

// TestOrderConfirmationCannotPing checks the structure, not just the
// golden bytes: the customization travels only in a plain rich-text text
// element, and no mrkdwn text carries it.
func TestOrderConfirmationCannotPing(t *testing.T) {
	o := coffee.Order{UserID: "U0EVE", Drink: "latte", Size: "large", Customizations: ordersHostile + strings.Repeat("☕", 100)}
	raw, err := json.Marshal(slack.Blocks{BlockSet: OrderConfirmation(ConfirmNew, o)})
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	ordersWalkJSON(t, raw, func(obj map[string]any) {
		switch obj["type"] {
		case "user", "broadcast", "usergroup", "channel", "link":
			t.Errorf("confirmation has a %v element: %v", obj["type"], obj)
		case "mrkdwn":
			if s, _ := obj["text"].(string); strings.Contains(s, "<!channel>") || strings.Contains(s, "<@U123>") {
				t.Errorf("mrkdwn carries the customization: %q", s)
			}
		case "text":
			if s, _ := obj["text"].(string); strings.Contains(s, o.Customizations) {
				if obj["style"] != nil {
					t.Errorf("customization is styled: %v", obj)
				}
				found = true
			}
		}
	})
	if !found {
		t.Fatal("customization not shown verbatim in a text element")
	}
}

// ordersWalkJSON calls fn for every JSON object in raw.
func ordersWalkJSON(t *testing.T, raw []byte, fn func(map[string]any)) {
	t.Helper()
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			fn(x)
			for _, c := range x {
				walk(c)
			}
		case []any:
			for _, c := range x {
				walk(c)
			}
		}
	}
	walk(v)
}
