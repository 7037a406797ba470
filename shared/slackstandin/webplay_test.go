package slackstandin

import (
	"encoding/json"
	"maps"
	"testing"
)

func TestClientChecks(t *testing.T) {
	inputs := inputBlocks(json.RawMessage(`[
	 {"type":"section","text":{"type":"mrkdwn","text":"not an input"}},
	 {"type":"input","block_id":"drink","element":{"type":"static_select","action_id":"drink","options":[{"text":{"type":"plain_text","text":"Latte"},"value":"latte"}]}},
	 {"type":"input","block_id":"note","optional":true,"element":{"type":"plain_text_input","action_id":"note","max_length":5,"min_length":2}},
	 {"type":"input","block_id":"size","element":{"type":"radio_buttons","action_id":"size","options":[{"text":{"type":"plain_text","text":"S"},"value":"s"}]}},
	 {"type":"input","block_id":"extras","optional":true,"element":{"type":"checkboxes","action_id":"extras","options":[{"text":{"type":"plain_text","text":"Oat"},"value":"oat"}]}}
	]`))
	if len(inputs) != 4 {
		t.Fatalf("%d input blocks, want 4", len(inputs))
	}
	tests := []struct {
		name   string
		values string
		want   map[string]string
	}{
		{"all good", `{"drink":"latte","note":"hé!","size":"s","extras":["oat"]}`, map[string]string{}},
		{"optional empty", `{"drink":"latte","size":"s","note":null,"extras":[]}`, map[string]string{}},
		{"required empty", `{"drink":"","size":null}`, map[string]string{
			"drink": "Please complete this required field.", "size": "Please complete this required field."}},
		{"blank is empty", `{"drink":"latte","size":"s","note":"   "}`, map[string]string{}},
		{"too long in runes", `{"drink":"latte","size":"s","note":"ééééééé"}`, map[string]string{"note": "Please enter no more than 5 characters (this is 7)."}},
		{"too short", `{"drink":"latte","size":"s","note":"x"}`, map[string]string{"note": "Please enter at least 2 characters."}},
		{"not offered", `{"drink":"tea","size":"s","extras":["oat","sugar"]}`, map[string]string{
			"drink": "Please choose one of the options.", "extras": "Please choose one of the options."}},
		{"unreadable", `{"drink":{"x":1},"size":"s"}`, map[string]string{"drink": "This value cannot be read."}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var values map[string]json.RawMessage
			if err := json.Unmarshal([]byte(tt.values), &values); err != nil {
				t.Fatal(err)
			}
			if got := clientChecks(inputs, values); !maps.Equal(got, tt.want) {
				t.Errorf("clientChecks = %v, want %v", got, tt.want)
			}
		})
	}

	state, err := viewState(inputs, map[string]json.RawMessage{"drink": json.RawMessage(`"latte"`), "extras": json.RawMessage(`["oat"]`)})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(state)
	const want = `{"drink":{"drink":{"selected_option":{"text":{"type":"plain_text","text":"Latte"},"value":"latte"},"type":"static_select"}},` +
		`"extras":{"extras":{"selected_options":[{"text":{"type":"plain_text","text":"Oat"},"value":"oat"}],"type":"checkboxes"}},` +
		`"note":{"note":{"type":"plain_text_input","value":null}},` +
		`"size":{"size":{"selected_option":null,"type":"radio_buttons"}}}`
	if string(got) != want {
		t.Errorf("viewState =\n%s\nwant\n%s", got, want)
	}
}
