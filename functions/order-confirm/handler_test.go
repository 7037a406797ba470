package main

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/coffeebuddy/coffeebuddy/shared/blocks"
	"github.com/coffeebuddy/coffeebuddy/shared/coffee"
	"github.com/coffeebuddy/coffeebuddy/shared/events"
	"github.com/coffeebuddy/coffeebuddy/shared/functest"
	"github.com/coffeebuddy/coffeebuddy/shared/function"
	"github.com/coffeebuddy/coffeebuddy/shared/postgres/pgtest"
	"github.com/coffeebuddy/coffeebuddy/shared/slackapi"
	"github.com/coffeebuddy/coffeebuddy/shared/slackstandin"
	"github.com/coffeebuddy/coffeebuddy/shared/store"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/slack-go/slack"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

var clock = time.Date(2026, 11, 21, 9, 30, 0, 0, time.UTC)

type rig struct {
	db      *pgtest.DB
	slack   *slackstandin.Server
	clients *slackapi.Clients
	h       *Handler
	run     uuid.UUID
	ts      string
}

// newRig starts a run in C1 and, if announced, posts its run message.
func newRig(t *testing.T, announced bool) *rig {
	t.Helper()
	db := pgtest.New(t)
	sl, clients := functest.Slack(t)
	r := &rig{db: db, slack: sl, clients: clients, h: New(store.New(db.Pool), clients)}
	err := pgx.BeginFunc(context.Background(), db.Pool, func(tx pgx.Tx) error {
		run, err := store.CreateRun(context.Background(), tx, store.NewRun{
			TeamID: "T1", ChannelID: "C1", InitiatorUserID: "U0INIT",
			LastCallAt: clock.Add(10 * time.Minute), CreatedAt: clock,
		})
		r.run = run.ID
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if announced {
		r.announce(t)
	}
	return r
}

// announce does what run-announce does.
func (r *rig) announce(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	run, err := store.GetRun(ctx, r.db.Pool, r.run)
	if err != nil {
		t.Fatal(err)
	}
	cli, err := r.clients.Get()
	if err != nil {
		t.Fatal(err)
	}
	_, ts, err := cli.PostMessageContext(ctx, "C1", slack.MsgOptionText(blocks.RunMessageText(run, 0), false),
		slack.MsgOptionBlocks(blocks.RunMessage(run, nil)...))
	if err != nil {
		t.Fatal(err)
	}
	if err := store.SetRunMessage(ctx, r.db.Pool, r.run, ts); err != nil {
		t.Fatal(err)
	}
	r.ts = ts
}

// place stores an order as order-place does and returns its fact.
func (r *rig) place(t *testing.T, user, drink, size, custom string, usual bool) events.OrderPlaced {
	t.Helper()
	ctx := context.Background()
	var edited bool
	err := pgx.BeginFunc(ctx, r.db.Pool, func(tx pgx.Tx) error {
		if err := store.UpsertUser(ctx, tx, "T1", user, strings.ToLower(user)); err != nil {
			return err
		}
		var err error
		_, edited, err = store.PlaceOrder(ctx, tx, "T1", "C1", coffee.Order{UserID: user, Drink: drink, Size: size, Customizations: custom}, clock)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return events.OrderPlaced{RunID: r.run.String(), UserID: user, Drink: drink, Size: size, Customizations: custom, Edited: edited, Usual: usual}
}

func placed(id string, p events.OrderPlaced) event.Event {
	return functest.Event(id, events.TypeOrderPlaced, "/coffeebuddy/order-place", p)
}

func (r *rig) handle(t *testing.T, e event.Event) {
	t.Helper()
	if _, err := r.h.Handle(context.Background(), e); err != nil {
		t.Fatalf("Handle(%s) = %v", e.ID(), err)
	}
}

// runMessage is the run message as it now stands in C1.
func (r *rig) runMessage(t *testing.T) slackstandin.Message {
	t.Helper()
	for _, m := range r.slack.Messages("C1") {
		if m.TS == r.ts {
			return m
		}
	}
	t.Fatalf("run message %s not in C1", r.ts)
	return slackstandin.Message{}
}

// texts returns every rich-text "text" element's text in raw blocks.
func texts(t *testing.T, raw []byte) []string {
	t.Helper()
	var out []string
	walk(t, raw, func(obj map[string]any) {
		if obj["type"] == "text" {
			s, _ := obj["text"].(string)
			out = append(out, s)
		}
	})
	return out
}

func TestConfirmsAndUpdatesTheRunMessage(t *testing.T) {
	r := newRig(t, true)
	p := r.place(t, "U1", "latte", "large", "oat milk", false)
	e := placed("ce-1", p)
	r.handle(t, e)
	r.handle(t, e) // redelivery: nothing twice

	if n := len(r.slack.Calls("chat.update")); n != 1 {
		t.Fatalf("%d chat.update calls, want 1", n)
	}
	if n := len(r.slack.Calls("chat.postMessage")); n != 1 {
		t.Fatalf("%d chat.postMessage calls, want only the announcement", n)
	}
	msg := r.runMessage(t)
	if got := texts(t, msg.Blocks); !contains(got, ": Large Latte (oat milk)") {
		t.Fatalf("run message texts %q lack the order", got)
	}
	if !strings.Contains(string(msg.Blocks), "1× Large Latte") {
		t.Fatalf("run message lacks the totals: %s", msg.Blocks)
	}
	eph := r.slack.Ephemerals("U1")
	if len(eph) != 1 {
		t.Fatalf("%d ephemerals to U1, want 1", len(eph))
	}
	if eph[0].Channel != "C1" || eph[0].Text != "☕ Your order is in: Large Latte (oat milk)" {
		t.Fatalf("confirmation %q in %s", eph[0].Text, eph[0].Channel)
	}
	want, _ := json.Marshal(blocks.OrderConfirmation(blocks.ConfirmNew, coffee.Order{Drink: "latte", Size: "large", Customizations: "oat milk"}))
	if !jsonEqual(t, eph[0].Blocks, want) {
		t.Fatalf("confirmation blocks\n%s\nwant (golden orders_confirm_new)\n%s", eph[0].Blocks, want)
	}
}

// TestEditShowsOnce: an edit before last call replaces the order; the run
// message lists the user once, with the new drink.
func TestEditShowsOnce(t *testing.T) {
	r := newRig(t, true)
	r.place(t, "U2", "espresso", "small", "", false)
	r.handle(t, placed("ce-1", r.place(t, "U1", "latte", "large", "oat milk", false)))
	edit := r.place(t, "U1", "mocha", "small", "no cream", false)
	if !edit.Edited {
		t.Fatal("second order was not an edit")
	}
	r.handle(t, placed("ce-2", edit))

	msg := r.runMessage(t)
	got := texts(t, msg.Blocks)
	if contains(got, ": Large Latte (oat milk)") || !contains(got, ": Small Mocha (no cream)") {
		t.Fatalf("run message texts %q: want the edited order only", got)
	}
	if n := strings.Count(string(msg.Blocks), `"user_id":"U1"`); n != 1 {
		t.Fatalf("U1 listed %d times in the run message, want once: %s", n, msg.Blocks)
	}
	if !strings.Contains(string(msg.Blocks), "*Orders (2)*") || strings.Contains(string(msg.Blocks), "Large Latte") {
		t.Fatalf("run message: %s", msg.Blocks)
	}
	eph := r.slack.Ephemerals("U1")
	if len(eph) != 2 || eph[1].Text != "☕ Order updated: Small Mocha (no cream)" {
		t.Fatalf("ephemerals = %+v", eph)
	}
}

func TestUsualConfirmation(t *testing.T) {
	r := newRig(t, true)
	r.handle(t, placed("ce-1", r.place(t, "U1", "cappuccino", "medium", "", true)))
	eph := r.slack.Ephemerals("U1")
	if len(eph) != 1 || eph[0].Text != "☕ Your usual is in: Medium Cappuccino" {
		t.Fatalf("ephemerals = %+v", eph)
	}
}

// TestWaitsForTheRunMessage: before run-announce posted the message there
// is nothing to update, and the confirmation waits for it.
func TestWaitsForTheRunMessage(t *testing.T) {
	r := newRig(t, false)
	e := placed("ce-1", r.place(t, "U1", "latte", "large", "", false))
	if _, err := r.h.Handle(context.Background(), e); err == nil || function.IsPermanent(err) {
		t.Fatalf("Handle = %v, want a retryable error", err)
	}
	if n := len(r.slack.Ephemerals("")) + len(r.slack.Calls("chat.update")); n != 0 {
		t.Fatalf("%d ephemerals/updates before the run message exists", n)
	}
	r.announce(t)
	r.handle(t, e)
	if n := len(r.slack.Ephemerals("U1")); n != 1 {
		t.Fatalf("%d ephemerals, want 1", n)
	}
}

func TestSlackFailuresAreRetried(t *testing.T) {
	for _, method := range []string{"chat.update", "chat.postEphemeral"} {
		t.Run(method, func(t *testing.T) {
			r := newRig(t, true)
			e := placed("ce-1", r.place(t, "U1", "latte", "large", "", false))
			r.slack.SetFault(method, slackstandin.FailN(1, 500, 0))
			if _, err := r.h.Handle(context.Background(), e); err == nil || function.IsPermanent(err) {
				t.Fatalf("Handle = %v, want a retryable error", err)
			}
			r.handle(t, e)
			r.handle(t, e)
			if n := len(r.slack.Ephemerals("U1")); n != 1 {
				t.Fatalf("%d ephemerals, want 1", n)
			}
			if got := texts(t, r.runMessage(t).Blocks); !contains(got, ": Large Latte") {
				t.Fatalf("run message texts %q lack the order", got)
			}
		})
	}
}

func TestBadEventsArePermanent(t *testing.T) {
	r := newRig(t, true)
	notJSON := placed("ce-x", events.OrderPlaced{})
	_ = notJSON.SetData(event.ApplicationJSON, []byte("{nope"))
	tests := map[string]event.Event{
		"undecodable payload": notJSON,
		"bad run id":          placed("ce-1", events.OrderPlaced{RunID: "nope", UserID: "U1"}),
		"unknown run":         placed("ce-2", events.OrderPlaced{RunID: uuid.NewString(), UserID: "U1", Drink: "latte", Size: "large"}),
		"no user":             placed("ce-3", events.OrderPlaced{RunID: r.run.String(), Drink: "latte", Size: "large"}),
	}
	for name, e := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := r.h.Handle(context.Background(), e); !function.IsPermanent(err) {
				t.Fatalf("Handle = %v, want a permanent error", err)
			}
		})
	}
	if n := len(r.slack.Ephemerals("")); n != 0 {
		t.Fatalf("%d ephemerals from bad events", n)
	}
}

// TestHostileCustomizationsPingNobody renders typed text that would ping,
// format or break markup, and checks both the chat.update blocks and every
// confirmation: shown verbatim, and no mention or broadcast but the users
// CoffeeBuddy itself names.
func TestHostileCustomizationsPingNobody(t *testing.T) {
	r := newRig(t, true)
	hostile := map[string]string{
		"U1": "<!channel>",
		"U2": "<@U123>",
		"U3": "*bold* _it_ ~strike~",
		"U4": "&<>",
		"U5": strings.Repeat("☕", coffee.MaxCustomization),
		"U6": "'; DROP TABLE orders; --",
		"U7": "<!here|here> <!subteam^S1> <#C9> <https://evil.example|click>",
		"U8": "&lt;!channel&gt; (pre-escaped)",
	}
	users := []string{"U1", "U2", "U3", "U4", "U5", "U6", "U7", "U8"}
	for i, u := range users {
		r.handle(t, placed(fmt.Sprintf("ce-%d", i), r.place(t, u, "latte", "large", hostile[u], false)))
	}
	allowed := map[string]bool{"U0INIT": true}
	for _, u := range users {
		allowed[u] = true
	}

	updates := r.slack.Calls("chat.update")
	if len(updates) != len(users) {
		t.Fatalf("%d chat.update calls, want %d", len(updates), len(users))
	}
	last := updates[len(updates)-1].Params
	assertNoPings(t, "chat.update", last["text"], []byte(last["blocks"]), allowed)
	shown := texts(t, []byte(last["blocks"]))
	for _, u := range users {
		if !contains(shown, ": Large Latte ("+hostile[u]+")") {
			t.Errorf("run message does not show %s's customization verbatim: %q", u, hostile[u])
		}
	}
	for _, u := range users {
		eph := r.slack.Ephemerals(u)
		if len(eph) != 1 {
			t.Fatalf("%d confirmations to %s, want 1", len(eph), u)
		}
		assertNoPings(t, "confirmation to "+u, eph[0].Text, eph[0].Blocks, map[string]bool{})
		if !contains(texts(t, eph[0].Blocks), " ("+hostile[u]+")") {
			t.Errorf("confirmation to %s does not show %q verbatim", u, hostile[u])
		}
		if want := "☕ Your order is in: Large Latte (" + blocks.Escape(hostile[u]) + ")"; eph[0].Text != want {
			t.Errorf("fallback to %s = %q, want %q", u, eph[0].Text, want)
		}
	}
	var stored string
	if err := r.db.Pool.QueryRow(context.Background(), `SELECT customizations FROM orders WHERE user_id = 'U6'`).Scan(&stored); err != nil || stored != hostile["U6"] {
		t.Fatalf("stored %q (%v)", stored, err)
	}
}

var mrkdwnControl = regexp.MustCompile(`<[^>]*>`)

// assertNoPings fails if text (the notification fallback, read as mrkdwn)
// or the blocks could mention or link anything but the allowed users and
// date formatting.
func assertNoPings(t *testing.T, what, text string, raw []byte, allowed map[string]bool) {
	t.Helper()
	for _, p := range pings(t, text, raw, allowed) {
		t.Errorf("%s: %s", what, p)
	}
}

func pings(t *testing.T, text string, raw []byte, allowed map[string]bool) []string {
	t.Helper()
	var out []string
	checkMrkdwn := func(s string) {
		for _, m := range mrkdwnControl.FindAllString(s, -1) {
			if strings.HasPrefix(m, "<!date^") {
				continue
			}
			if strings.HasPrefix(m, "<@") && allowed[strings.Trim(m, "<@>")] {
				continue
			}
			out = append(out, fmt.Sprintf("mrkdwn control sequence %q in %q", m, s))
		}
	}
	checkMrkdwn(text)
	walk(t, raw, func(obj map[string]any) {
		switch obj["type"] {
		case "mrkdwn":
			s, _ := obj["text"].(string)
			checkMrkdwn(s)
		case "user":
			if id, _ := obj["user_id"].(string); !allowed[id] {
				out = append(out, fmt.Sprintf("mentions user %q", id))
			}
		case "broadcast", "usergroup", "channel", "link":
			out = append(out, fmt.Sprintf("%v element %v", obj["type"], obj))
		}
	})
	return out
}

// TestPingCheckBites proves assertNoPings would catch unescaped text.
func TestPingCheckBites(t *testing.T) {
	unsafe := []slack.Block{
		slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, "Order: <!channel> for <@U123>", false, false), nil, nil),
		slack.NewRichTextBlock("x", slack.NewRichTextSection(slack.NewRichTextSectionBroadcastElement("channel"))),
	}
	raw, _ := json.Marshal(unsafe)
	got := pings(t, "hi <!here>", raw, map[string]bool{"U1": true})
	if len(got) != 4 {
		t.Fatalf("pings found %d problems, want 4 (<!here>, <!channel>, <@U123>, broadcast): %q", len(got), got)
	}
	safe, _ := json.Marshal(blocks.OrderConfirmation(blocks.ConfirmNew, coffee.Order{Drink: "latte", Size: "large", Customizations: "<!channel>"}))
	if got := pings(t, blocks.OrderConfirmationText(blocks.ConfirmNew, coffee.Order{Drink: "latte", Size: "large", Customizations: "<!channel>"}), safe, nil); len(got) != 0 {
		t.Fatalf("safe confirmation flagged: %q", got)
	}
}

func walk(t *testing.T, raw []byte, fn func(map[string]any)) {
	t.Helper()
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("blocks %s: %v", raw, err)
	}
	var rec func(any)
	rec = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			fn(x)
			for _, c := range x {
				rec(c)
			}
		case []any:
			for _, c := range x {
				rec(c)
			}
		}
	}
	rec(v)
}

func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatal(err)
	}
	ja, _ := json.Marshal(x)
	jb, _ := json.Marshal(y)
	return string(ja) == string(jb)
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}
