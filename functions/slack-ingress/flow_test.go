package main

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coffeebuddy/coffeebuddy/shared/coffee"
	"github.com/coffeebuddy/coffeebuddy/shared/events"
	"github.com/coffeebuddy/coffeebuddy/shared/kafka"
	"github.com/coffeebuddy/coffeebuddy/shared/slackstandin"
	"github.com/coffeebuddy/coffeebuddy/shared/store"
	"github.com/jackc/pgx/v5"
)

func (r *rig) interaction(t *testing.T, payload map[string]any) (int, string) {
	t.Helper()
	b, _ := json.Marshal(payload)
	return r.post(t, "/slack/interactions", url.Values{"payload": {string(b)}}.Encode(), time.Now().Unix(), "")
}

func (r *rig) startRun(t *testing.T, channel string, lastCall time.Time) {
	t.Helper()
	err := pgx.BeginFunc(context.Background(), r.db.Pool, func(tx pgx.Tx) error {
		_, err := store.CreateRun(context.Background(), tx, store.NewRun{TeamID: "T0001", ChannelID: channel,
			InitiatorUserID: "U1", LastCallAt: lastCall, CreatedAt: time.Now()})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestButtonsBecomeRequests(t *testing.T) {
	r := newRig(t)
	for action := range buttonRequests {
		status, _ := r.interaction(t, map[string]any{
			"type": "block_actions", "team": map[string]string{"id": "T0001"}, "user": map[string]string{"id": "U2", "name": "bob"},
			"channel": map[string]string{"id": "C1"}, "response_url": "https://hooks.slack.com/actions/x",
			"actions": []map[string]string{{"action_id": action, "block_id": "run_actions", "value": "run-42"}},
		})
		if status != 200 {
			t.Fatalf("%s: status %d", action, status)
		}
	}
	recs := r.kafka.Consume(t, events.TopicSlackEvents, len(buttonRequests), 5*time.Second)
	got := map[string]bool{}
	for _, rec := range recs {
		ev, err := kafka.Event(rec)
		if err != nil {
			t.Fatal(err)
		}
		var act events.RunAction
		if err := ev.DataAs(&act); err != nil || act.RunID != "run-42" || act.UserID != "U2" || string(rec.Key) != "run-42" {
			t.Fatalf("%s payload %+v key %s (%v)", ev.Type(), act, rec.Key, err)
		}
		got[ev.Type()] = true
	}
	for _, typ := range buttonRequests {
		if !got[typ] {
			t.Errorf("no %s produced", typ)
		}
	}
}

func TestAddOrderOpensPrefilledModal(t *testing.T) {
	r := newRig(t)
	r.startRun(t, "C-old", time.Now().Add(time.Hour))
	ctx := context.Background()
	for range 2 {
		err := pgx.BeginFunc(ctx, r.db.Pool, func(tx pgx.Tx) error {
			_, _, err := store.PlaceOrder(ctx, tx, "T0001", "C-old", coffeeOrder("U2", "americano", "large"), time.Now())
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	r.interaction(t, map[string]any{
		"type": "block_actions", "team": map[string]string{"id": "T0001"}, "user": map[string]string{"id": "U2"},
		"channel": map[string]string{"id": "C1"}, "trigger_id": "trig-1",
		"actions": []map[string]string{{"action_id": "order_add", "block_id": "run_actions", "value": "run-42"}},
	})
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	calls, err := r.slack.WaitForCalls(cctx, "views.open", 1)
	if err != nil {
		t.Fatal(err)
	}
	view := calls[0].Params["view"]
	if !strings.Contains(view, `"initial_option":{"text":{"type":"plain_text","text":"Americano"`) || !strings.Contains(view, `"value":"large"}`) {
		t.Fatalf("modal not pre-filled with the favourite: %s", view)
	}
}

func TestOrderAfterLastCallGetsInlineError(t *testing.T) {
	r := newRig(t)
	r.startRun(t, "C1", time.Now().Add(-time.Second)) // last call passed
	status, body := r.interaction(t, map[string]any{
		"type": "view_submission", "team": map[string]string{"id": "T0001"}, "user": map[string]string{"id": "U1"},
		"view": map[string]any{
			"callback_id": "order_submit", "private_metadata": `{"team_id":"T0001","channel_id":"C1"}`,
			"state": map[string]any{"values": map[string]any{
				"drink": map[string]any{"drink": map[string]any{"type": "static_select", "selected_option": map[string]any{"value": "latte"}}},
				"size":  map[string]any{"size": map[string]any{"type": "static_select", "selected_option": map[string]any{"value": "small"}}},
			}},
		},
	})
	if status != 200 || !strings.Contains(body, `"response_action":"errors"`) || !strings.Contains(body, "closed") {
		t.Fatalf("got %d %s", status, body)
	}
	if recs := r.kafka.Consume(t, events.TopicSlackEvents, 1, 500*time.Millisecond); len(recs) != 0 {
		t.Fatal("a late order was produced")
	}
}

func TestOrderForAClosedRunGetsInlineError(t *testing.T) {
	r := newRig(t)
	r.startRun(t, "C1", time.Now().Add(time.Hour))
	if _, err := r.db.Pool.Exec(context.Background(), `UPDATE coffee_runs SET status = 'closed'`); err != nil {
		t.Fatal(err)
	}
	open, err := dbLookups{r.db.Pool}.OrderingOpen(context.Background(), "T0001", "C1", time.Now())
	if err != nil || open {
		t.Fatalf("OrderingOpen on a closed run = %v, %v", open, err)
	}
	// No run at all yet: the /coffee may be in flight, so the form is accepted.
	open, err = dbLookups{r.db.Pool}.OrderingOpen(context.Background(), "T0001", "C-new", time.Now())
	if err != nil || !open {
		t.Fatalf("OrderingOpen before the run exists = %v, %v", open, err)
	}
}

func TestHistoryCommand(t *testing.T) {
	r := newRig(t)
	post := func(text string) string {
		body := strings.Replace(commandBody(text), "command=%2Fcoffee", "command=%2Fcoffee-history", 1)
		status, got := r.post(t, "/slack/commands", body, time.Now().Unix(), "")
		if status != 200 {
			t.Fatalf("status %d", status)
		}
		return got
	}
	if got := post(""); !strings.Contains(got, "No coffee runs yet!") {
		t.Fatalf("empty history: %s", got)
	}
	r.startRun(t, "C2147483705", time.Now().Add(time.Hour))
	if got := post("--page 1"); !strings.Contains(got, "page 1 of 1, 1 run)") || !strings.Contains(got, "taking orders") {
		t.Fatalf("history: %s", got)
	}
	if got := post("--page zero"); !strings.Contains(got, "Usage") {
		t.Fatalf("bad page: %s", got)
	}
}

func TestParsePage(t *testing.T) {
	tests := map[string]int{"": 1, "--page 3": 3, "-p 2": 2, "--page=4": 4, "5": 5, "--page 0": 0, "--page x": 0, "a b c": 0}
	for in, want := range tests {
		got, ok := parsePage(in)
		if (want == 0) == ok || (ok && got != want) {
			t.Errorf("parsePage(%q) = %d, %v; want %d", in, got, ok, want)
		}
	}
}

func coffeeOrder(user, drink, size string) coffee.Order {
	return coffee.Order{UserID: user, Drink: drink, Size: size}
}

// TestChangingAnOrderPrefillsIt: a user who already ordered in the run gets
// their own order back in the form (customization included) to change it,
// and the form remembers where they clicked, so the answer to the
// submission goes there.
func TestChangingAnOrderPrefillsIt(t *testing.T) {
	r := newRig(t)
	r.startRun(t, "C1", time.Now().Add(time.Hour))
	ctx := context.Background()
	err := pgx.BeginFunc(ctx, r.db.Pool, func(tx pgx.Tx) error {
		o := coffeeOrder("U2", "mocha", "small")
		o.Customizations = "oat milk <!here>"
		_, _, err := store.PlaceOrder(ctx, tx, "T0001", "C1", o, time.Now())
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	const responseURL = "https://hooks.slack.com/actions/T0001/1/abc"
	r.interaction(t, map[string]any{
		"type": "block_actions", "team": map[string]string{"id": "T0001"}, "user": map[string]string{"id": "U2"},
		"channel": map[string]string{"id": "C1"}, "trigger_id": "trig-1", "response_url": responseURL,
		"actions": []map[string]string{{"action_id": "order_add", "block_id": "run_actions", "value": "run-42"}},
	})
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	calls, err := r.slack.WaitForCalls(cctx, "views.open", 1)
	if err != nil {
		t.Fatal(err)
	}
	var view struct {
		Title           struct{ Text string } `json:"title"`
		PrivateMetadata string                `json:"private_metadata"`
		Blocks          []struct {
			Element struct {
				InitialOption *struct{ Value string } `json:"initial_option"`
				InitialValue  string                  `json:"initial_value"`
			} `json:"element"`
		} `json:"blocks"`
	}
	if err := json.Unmarshal([]byte(calls[0].Params["view"]), &view); err != nil {
		t.Fatal(err)
	}
	if view.Title.Text != "Change your order" || len(view.Blocks) != 3 || view.Blocks[0].Element.InitialOption == nil ||
		view.Blocks[0].Element.InitialOption.Value != "mocha" || view.Blocks[1].Element.InitialOption.Value != "small" ||
		view.Blocks[2].Element.InitialValue != "oat milk <!here>" {
		t.Fatalf("form for changing an order: %s", calls[0].Params["view"])
	}
	var meta struct {
		ResponseURL string `json:"response_url"`
	}
	if err := json.Unmarshal([]byte(view.PrivateMetadata), &meta); err != nil || meta.ResponseURL != responseURL {
		t.Fatalf("private_metadata %q (%v): want the click's response_url", view.PrivateMetadata, err)
	}

	// The submission carries it on, and spaces alone are no customization.
	status, body := r.interaction(t, map[string]any{
		"type": "view_submission", "team": map[string]string{"id": "T0001"}, "user": map[string]string{"id": "U2"},
		"view": map[string]any{
			"callback_id": "order_submit", "private_metadata": view.PrivateMetadata,
			"state": map[string]any{"values": map[string]any{
				"drink":          map[string]any{"drink": map[string]any{"type": "static_select", "selected_option": map[string]any{"value": "latte"}}},
				"size":           map[string]any{"size": map[string]any{"type": "static_select", "selected_option": map[string]any{"value": "large"}}},
				"customizations": map[string]any{"customizations": map[string]any{"type": "plain_text_input", "value": "   "}},
			}},
		},
	})
	if status != 200 || body != "" {
		t.Fatalf("submission: %d %q", status, body)
	}
	recs := r.kafka.Consume(t, events.TopicSlackEvents, 1, 5*time.Second)
	ev, err := kafka.Event(recs[0])
	if err != nil {
		t.Fatal(err)
	}
	var sub events.OrderSubmitted
	if err := ev.DataAs(&sub); err != nil || sub.ResponseURL != responseURL || sub.Customizations != "" || sub.Drink != "latte" {
		t.Fatalf("order.submitted %+v (%v)", sub, err)
	}
	// order-place is an ordered Trigger: its events must carry their key as
	// the partitionkey extension, which the Kafka Broker keys its topic by.
	if pk := ev.Extensions()[kafka.ExtPartitionKey]; pk != string(recs[0].Key) || pk != "T0001/C1" {
		t.Fatalf("partitionkey %v, key %s; want both T0001/C1", pk, recs[0].Key)
	}
}

// TestCancelIsAcknowledged: /coffee-cancel answers at once; the outcome
// follows from run-cancel.
func TestCancelIsAcknowledged(t *testing.T) {
	r := newRig(t)
	body := strings.Replace(commandBody("rain"), "command=%2Fcoffee", "command=%2Fcoffee-cancel", 1)
	status, got := r.post(t, "/slack/commands", body, time.Now().Unix(), "")
	if status != 200 || !strings.Contains(got, "Cancelling") || !strings.Contains(got, `"response_type":"ephemeral"`) {
		t.Fatalf("ack: %d %s", status, got)
	}
	if recs := r.kafka.Consume(t, events.TopicSlackEvents, 1, 5*time.Second); len(recs) != 1 {
		t.Fatalf("%d cancel requests produced, want 1", len(recs))
	}
}

// TestOrderFormThatDoesNotOpenIsExplained: Slack refuses views.open with a
// trigger_id it no longer accepts (here exchanged: used once already; an
// expired one gets the same answer) and shows the user nothing, so the
// ingress tells them through the button's response_url and says what to
// do. A form that opens says nothing more.
func TestOrderFormThatDoesNotOpenIsExplained(t *testing.T) {
	r := newRig(t)
	const user = "U2"
	trigger := r.slack.NewTriggerID(user)
	press := func() {
		status, _ := r.interaction(t, map[string]any{
			"type": "block_actions", "team": map[string]string{"id": "T0001"}, "user": map[string]string{"id": user},
			"channel": map[string]string{"id": "C1"}, "trigger_id": trigger, "response_url": r.slack.NewResponseURL("C1", user),
			"actions": []map[string]string{{"action_id": "order_add", "block_id": "run_actions", "value": "run-42"}},
		})
		if status != 200 {
			t.Fatalf("status %d", status)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	press()
	if _, err := r.slack.WaitForCalls(ctx, "views.open", 1); err != nil {
		t.Fatal(err)
	}
	if len(r.slack.Views(user)) != 1 {
		t.Fatalf("first press: %d views open, want 1", len(r.slack.Views(user)))
	}

	press() // the same trigger_id again: Slack answers exchanged_trigger_id
	if _, err := r.slack.WaitForCalls(ctx, slackstandin.MethodResponseURL, 1); err != nil {
		t.Fatal(err)
	}
	eph := r.slack.Ephemerals(user)
	if len(eph) != 1 || eph[0].Channel != "C1" || eph[0].Via != slackstandin.MethodResponseURL ||
		!strings.Contains(eph[0].Text, "did not open in time") || !strings.Contains(eph[0].Text, "Add my order") {
		t.Fatalf("what the user sees: %+v", eph)
	}
	if calls := r.slack.Calls("views.open"); len(calls) != 2 || len(r.slack.Views(user)) != 1 {
		t.Fatalf("%d views.open calls, %d views; want 2 calls, the second refused", len(calls), len(r.slack.Views(user)))
	}
	lines, err := r.logs.Lines()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, l := range lines {
		found = found || l["msg"] == "could not open order modal" && l["slack_error"] == "exchanged_trigger_id"
	}
	if !found {
		t.Errorf("no warning naming exchanged_trigger_id in the logs:\n%s", r.logs.String())
	}
}
