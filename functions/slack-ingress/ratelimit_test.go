package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coffeebuddy/coffeebuddy/shared/blocks"
	"github.com/coffeebuddy/coffeebuddy/shared/config"
	"github.com/coffeebuddy/coffeebuddy/shared/events"
	"github.com/coffeebuddy/coffeebuddy/shared/kafka"
	"github.com/coffeebuddy/coffeebuddy/shared/kafka/kafkatest"
	"github.com/coffeebuddy/coffeebuddy/shared/postgres/pgtest"
	"github.com/coffeebuddy/coffeebuddy/shared/slackapi"
	"github.com/coffeebuddy/coffeebuddy/shared/slackstandin"
	"github.com/prometheus/client_golang/prometheus"
)

// These tests drive the per-user limit through the HTTP handler with signed
// requests on an injected clock, against the real parts: a Kafka-protocol
// cluster (what was produced is read back from slack.events), PostgreSQL,
// and the Slack stand-in behind the production adapters (the modals opened
// and the ephemerals posted are what it recorded).

func TestUserLimiterSlidingWindow(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	a, b := userKey{"T1", "UA"}, userKey{"T1", "UB"}
	type step struct {
		who   userKey
		at    float64 // seconds after t0
		ok    bool
		wait  time.Duration // when refused
		first bool          // when refused
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"three within the window, the fourth refused until the first leaves it", []step{
			{a, 0, true, 0, false}, {a, 10, true, 0, false}, {a, 20, true, 0, false},
			{a, 30, false, 30 * time.Second, true},
			{a, 59.5, false, 500 * time.Millisecond, false},
			{a, 60, true, 0, false}, // t0's request left the window
			{a, 61, false, 9 * time.Second, true},
		}},
		{"refusals are not counted: hammering does not delay recovery", []step{
			{a, 0, true, 0, false}, {a, 0, true, 0, false}, {a, 0, true, 0, false},
			{a, 1, false, 59 * time.Second, true}, {a, 2, false, 58 * time.Second, false}, {a, 3, false, 57 * time.Second, false},
			{a, 60, true, 0, false}, {a, 60, true, 0, false}, {a, 60, true, 0, false},
		}},
		{"one user's burst leaves another alone", []step{
			{a, 0, true, 0, false}, {a, 0, true, 0, false}, {a, 0, true, 0, false}, {a, 1, false, 59 * time.Second, true},
			{b, 1, true, 0, false}, {b, 1, true, 0, false}, {b, 1, true, 0, false}, {b, 2, false, 59 * time.Second, true},
		}},
		{"the same user id in another workspace is another user", []step{
			{a, 0, true, 0, false}, {a, 0, true, 0, false}, {a, 0, true, 0, false},
			{userKey{"T2", "UA"}, 0, true, 0, false},
		}},
		{"a clock step backwards keeps what was counted", []step{
			{a, 30, true, 0, false}, {a, 30, true, 0, false}, {a, 30, true, 0, false},
			{a, 10, false, 80 * time.Second, true},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newUserLimiter(3, time.Minute)
			for i, s := range tt.steps {
				v := l.allow(s.who, at(s.at))
				if v.ok != s.ok || (!s.ok && (v.retryAfter != s.wait || v.first != s.first)) {
					t.Fatalf("step %d (%v at %gs): got %+v, want ok=%v wait=%v first=%v", i, s.who, s.at, v, s.ok, s.wait, s.first)
				}
			}
		})
	}
}

func TestUserLimiterForgetsIdleUsers(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	l := newUserLimiter(2, time.Minute)
	for i := range 1000 {
		l.allow(userKey{"T1", "U" + strconv.Itoa(i)}, t0)
	}
	if n := l.tracked(); n != 1000 {
		t.Fatalf("%d users tracked, want 1000", n)
	}
	// A minute later every one of them has left the window; the next
	// request sweeps them away.
	l.allow(userKey{"T1", "Unew"}, t0.Add(time.Minute))
	if n := l.tracked(); n != 1 {
		t.Fatalf("%d users tracked after the sweep, want 1", n)
	}
}

// ---- through the handler -------------------------------------------------

// limitRig is an Ingress on an injected clock (the verifier reads the same
// clock, so requests signed at the rig's time verify) wired to real parts: a
// Kafka-protocol cluster, its own PostgreSQL database, and the Slack
// stand-in behind the production adapters.
type limitRig struct {
	in    *Ingress
	srv   *httptest.Server
	kafka *kafkatest.Cluster
	slack *slackstandin.Server
	reg   *prometheus.Registry
	clock *clock
}

func newLimitRig(t *testing.T, opts ...Option) *limitRig {
	t.Helper()
	r := &limitRig{kafka: kafkatest.New(t), slack: slackstandin.NewTestServer(t, slackstandin.Options{}),
		reg: prometheus.NewRegistry(), clock: &clock{t: time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)}}
	producer, err := kafka.NewClient(r.kafka.Brokers, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(producer.Close)
	clients := slackapi.NewClients(config.StaticSecret("SLACK_BOT_TOKEN", slackstandin.DefaultBotToken), r.slack.APIURL())
	v := slackapi.NewVerifier(config.StaticSecret("SLACK_SIGNING_SECRET", secret), 0, r.clock.Now, slog.New(slog.DiscardHandler))
	opts = append([]Option{withClock(r.clock.Now)}, opts...)
	r.in = newIngress(v, producer, slackModals{clients}, dbLookups{pgtest.New(t).Pool}, 10*time.Minute,
		slog.New(slog.DiscardHandler), r.reg, opts...)
	r.srv = httptest.NewServer(r.in.routes())
	t.Cleanup(r.srv.Close)
	return r
}

func (r *limitRig) advance(d time.Duration) { r.clock.Advance(d) }

// send posts body to path, signed at the rig's clock (badSig: signed with
// another secret).
func (r *limitRig) send(t *testing.T, path, body string, badSig bool) (int, string) {
	t.Helper()
	key := secret
	if badSig {
		key = "not-the-secret"
	}
	ts := r.clock.Now().Unix()
	req, err := http.NewRequest(http.MethodPost, r.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set(slackapi.HeaderTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(slackapi.HeaderSignature, slackapi.Sign(key, ts, []byte(body)))
	resp, err := r.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func (r *limitRig) limitedTotal(t *testing.T, endpoint string) float64 {
	t.Helper()
	mfs, err := r.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "slack_ingress_user_rate_limited_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "endpoint" && l.GetValue() == endpoint {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("no slack_ingress_user_rate_limited_total{endpoint=%q}", endpoint)
	return 0
}

// quiet is how long the topic must stay without a further record for a
// count of what was produced to be exact. Every accepted request was
// produced (acks=all) before it was answered, so the records counted are
// already in the cluster: the wait only gives a record that should not
// exist the time to show up.
const quiet = time.Second

// tally is what one user made produce: the event's type and whose request
// it carried.
type tally struct {
	who user
	typ string
}

// produced reads slack.events from the start and returns what each user
// made produce. It fails unless there are exactly want records: it asks
// for one more than want, so it always waits quiet for a record too many.
func (r *limitRig) produced(t *testing.T, want int) map[tally]int {
	t.Helper()
	recs := r.kafka.Consume(t, events.TopicSlackEvents, want+1, quiet)
	if len(recs) != want {
		t.Fatalf("%d records in %s, want %d", len(recs), events.TopicSlackEvents, want)
	}
	out := map[tally]int{}
	for _, rec := range recs {
		ev, err := kafka.Event(rec)
		if err != nil {
			t.Fatal(err)
		}
		var who struct {
			Team string `json:"team_id"`
			User string `json:"user_id"`
		}
		if err := ev.DataAs(&who); err != nil {
			t.Fatal(err)
		}
		out[tally{user{who.Team, who.User}, ev.Type()}]++
	}
	return out
}

func (r *limitRig) wantProduced(t *testing.T, want map[tally]int) {
	t.Helper()
	n := 0
	for _, c := range want {
		n += c
	}
	if got := r.produced(t, n); !maps.Equal(got, want) {
		t.Fatalf("produced %v, want %v", got, want)
	}
}

// waitForModals waits until views.open has been called n times in all.
func (r *limitRig) waitForModals(t *testing.T, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := r.slack.WaitForCalls(ctx, "views.open", n); err != nil {
		t.Fatalf("waiting for %d views.open: %v (got %d)", n, err, len(r.slack.Calls("views.open")))
	}
}

// noModals checks that no order form was opened for u. A refusal never
// starts opening one, so there is nothing to wait for; callers check after
// produced, whose quiet wait would let a stray views.open arrive.
func (r *limitRig) noModals(t *testing.T, u user) {
	t.Helper()
	if n := len(r.slack.Calls("views.open")); n != 0 {
		t.Errorf("views.open called %d times", n)
	}
	if v := r.slack.Views(u.id); len(v) != 0 {
		t.Errorf("%d views opened for %s", len(v), u.id)
	}
}

// user is one Slack person sending requests.
type user struct{ team, id string }

// Requests carry what Slack's do: a response_url and a trigger_id issued
// by the stand-in for the user, so a views.open or a response_url post
// the ingress makes for them succeeds and is recorded.

func (r *limitRig) command(u user, name string) string {
	return url.Values{
		"team_id": {u.team}, "channel_id": {"C1"}, "user_id": {u.id}, "user_name": {"someone"},
		"command": {name}, "text": {""}, "response_url": {r.slack.NewResponseURL("C1", u.id)},
		"trigger_id": {r.slack.NewTriggerID(u.id)},
	}.Encode()
}

func (r *limitRig) click(u user, action string) string {
	b, _ := json.Marshal(map[string]any{
		"type": "block_actions", "team": map[string]string{"id": u.team}, "user": map[string]string{"id": u.id, "name": "someone"},
		"channel": map[string]string{"id": "C1"}, "response_url": r.slack.NewResponseURL("C1", u.id),
		"trigger_id": r.slack.NewTriggerID(u.id),
		"actions":    []map[string]string{{"action_id": action, "block_id": "run_actions", "value": "run-1"}},
	})
	return url.Values{"payload": {string(b)}}.Encode()
}

func submitOrder(u user) string {
	b, _ := json.Marshal(map[string]any{
		"type": "view_submission", "team": map[string]string{"id": u.team}, "user": map[string]string{"id": u.id},
		"view": map[string]any{
			"callback_id":      blocks.CallbackOrder,
			"private_metadata": `{"team_id":"` + u.team + `","channel_id":"C1"}`,
			"state": map[string]any{"values": map[string]any{
				"drink":          map[string]any{"drink": map[string]any{"type": "static_select", "selected_option": map[string]any{"value": "latte"}}},
				"size":           map[string]any{"size": map[string]any{"type": "static_select", "selected_option": map[string]any{"value": "large"}}},
				"customizations": map[string]any{"customizations": map[string]any{"type": "plain_text_input", "value": ""}},
			}},
		},
	})
	return url.Values{"payload": {string(b)}}.Encode()
}

func closeModal(u user) string {
	b, _ := json.Marshal(map[string]any{
		"type": "view_closed", "team": map[string]string{"id": u.team}, "user": map[string]string{"id": u.id},
		"view": map[string]any{"callback_id": blocks.CallbackOrder},
	})
	return url.Values{"payload": {string(b)}}.Encode()
}

// burn spends n of u's requests on /coffee-cancel (an event each).
func (r *limitRig) burn(t *testing.T, u user, n int) {
	t.Helper()
	for i := range n {
		if status, body := r.send(t, "/slack/commands", r.command(u, "/coffee-cancel"), false); status != 200 || !strings.Contains(body, "Cancelling") {
			t.Fatalf("request %d of %s: %d %s", i+1, u.id, status, body)
		}
	}
}

// toldSlowDown returns the ephemerals shown to u through a response_url
// that ask them to slow down, after the ingress's background answers.
func (r *limitRig) toldSlowDown(t *testing.T, u user) []slackstandin.Message {
	t.Helper()
	r.in.told.Wait()
	var out []slackstandin.Message
	for _, m := range r.slack.Ephemerals(u.id) {
		if !strings.Contains(m.Text, slowDown) {
			t.Errorf("unexpected ephemeral to %s: %q", u.id, m.Text)
			continue
		}
		if m.Via != slackstandin.MethodResponseURL || m.Channel != "C1" {
			t.Errorf("slow-down reached %s via %s in %s, want the click's response_url in C1", u.id, m.Via, m.Channel)
		}
		out = append(out, m)
	}
	return out
}

const slowDown = "That's a lot of CoffeeBuddy in one minute"

func TestPerUserLimitThroughHandler(t *testing.T) {
	alice, bob, aliceElsewhere := user{"T1", "UALICE"}, user{"T1", "UBOB"}, user{"T2", "UALICE"}
	cancels := func(u user, n int) map[tally]int { return map[tally]int{{u, events.TypeCommandCancel}: n} }
	tests := []struct {
		name string
		run  func(t *testing.T, r *limitRig)
	}{
		{"the 101st command in a minute gets a polite ephemeral and does nothing", func(t *testing.T, r *limitRig) {
			r.burn(t, alice, 100)
			r.advance(20 * time.Second)
			status, body := r.send(t, "/slack/commands", r.command(alice, "/coffee"), false)
			var ack blocks.Ephemeral
			if err := json.Unmarshal([]byte(body), &ack); err != nil || status != 200 || ack.ResponseType != "ephemeral" ||
				!strings.Contains(ack.Text, slowDown) || !strings.Contains(ack.Text, "up to 100 requests a minute") ||
				!strings.Contains(ack.Text, "try again in 40 seconds") {
				t.Fatalf("limited /coffee: %d %q (%v)", status, body, err)
			}
			r.in.told.Wait()
			r.wantProduced(t, cancels(alice, 100))
			r.noModals(t, alice)
			if got := r.limitedTotal(t, "commands"); got != 1 {
				t.Errorf("commands refusals counted %v, want 1", got)
			}
			if got := r.toldSlowDown(t, alice); len(got) != 0 {
				t.Errorf("a limited command was also answered through its response_url: %v", got)
			}
			// Once the window has moved on, the same /coffee opens the form.
			r.advance(40 * time.Second)
			if _, body := r.send(t, "/slack/commands", r.command(alice, "/coffee"), false); !strings.Contains(body, "Opening your order form") {
				t.Fatalf("/coffee after the window: %q", body)
			}
			r.waitForModals(t, 1)
			if v := r.slack.Views(alice.id); len(v) != 1 || v[0].CallbackID != blocks.CallbackOrder {
				t.Fatalf("views for alice %+v, want the order form", v)
			}
		}},
		{"one user's burst does not limit another, nor the same id in another workspace", func(t *testing.T, r *limitRig) {
			r.burn(t, alice, 100)
			if _, body := r.send(t, "/slack/commands", r.command(alice, "/coffee-cancel"), false); !strings.Contains(body, slowDown) {
				t.Fatalf("alice's 101st: %q", body)
			}
			r.burn(t, bob, 100)
			r.burn(t, aliceElsewhere, 100)
			r.wantProduced(t, map[tally]int{
				{alice, events.TypeCommandCancel}:          100,
				{bob, events.TypeCommandCancel}:            100,
				{aliceElsewhere, events.TypeCommandCancel}: 100,
			})
		}},
		{"the window recovers: a minute after the first request there is room again", func(t *testing.T, r *limitRig) {
			r.burn(t, alice, 50)
			r.advance(30 * time.Second)
			r.burn(t, alice, 50)
			r.advance(29 * time.Second)
			if _, body := r.send(t, "/slack/commands", r.command(alice, "/coffee-cancel"), false); !strings.Contains(body, "try again in 1 second.") {
				t.Fatalf("at 59 s: %q", body)
			}
			r.advance(time.Second) // the first 50 leave the window
			r.burn(t, alice, 50)
			if _, body := r.send(t, "/slack/commands", r.command(alice, "/coffee-cancel"), false); !strings.Contains(body, "try again in 30 seconds") {
				t.Fatalf("after 50 more at 60 s: %q", body)
			}
			r.advance(30 * time.Second)
			r.burn(t, alice, 50)
			r.wantProduced(t, cancels(alice, 200))
		}},
		{"unverified requests never count against the user they name", func(t *testing.T, r *limitRig) {
			for range 150 {
				if status, _ := r.send(t, "/slack/commands", r.command(alice, "/coffee-cancel"), true); status != 401 {
					t.Fatalf("forged request: %d, want 401", status)
				}
			}
			r.burn(t, alice, 100)
			if got := r.limitedTotal(t, "commands"); got != 0 {
				t.Errorf("refusals %v after forged requests, want 0", got)
			}
			r.wantProduced(t, cancels(alice, 100))
		}},
		{"a limited click is acked empty and the person is told once through its response_url", func(t *testing.T, r *limitRig) {
			r.burn(t, alice, 100)
			for i := range 3 {
				status, body := r.send(t, "/slack/interactions", r.click(alice, blocks.ActionVolunteer), false)
				if status != 200 || body != "" {
					t.Fatalf("limited click %d: %d %q, want an empty 200", i+1, status, body)
				}
			}
			if got := r.toldSlowDown(t, alice); len(got) != 1 {
				t.Fatalf("told %d times through a response_url, want once: %+v", len(got), got)
			}
			r.wantProduced(t, cancels(alice, 100)) // no click produced
			if got := r.limitedTotal(t, "interactions"); got != 3 {
				t.Errorf("interactions refusals %v, want 3", got)
			}
			// Told again in the next spell, not before.
			r.advance(time.Minute)
			r.burn(t, alice, 100)
			r.send(t, "/slack/interactions", r.click(alice, blocks.ActionVolunteer), false)
			if got := r.toldSlowDown(t, alice); len(got) != 2 {
				t.Fatalf("told %d times after a second spell, want 2", len(got))
			}
		}},
		{"a limited Add my order opens no form", func(t *testing.T, r *limitRig) {
			r.burn(t, alice, 100)
			if status, body := r.send(t, "/slack/interactions", r.click(alice, blocks.ActionAddOrder), false); status != 200 || body != "" {
				t.Fatalf("limited Add my order: %d %q", status, body)
			}
			if got := r.toldSlowDown(t, alice); len(got) != 1 {
				t.Errorf("told %d times, want once", len(got))
			}
			r.wantProduced(t, cancels(alice, 100))
			r.noModals(t, alice)
			// Bob, under the limit, gets his form from the same button.
			r.send(t, "/slack/interactions", r.click(bob, blocks.ActionAddOrder), false)
			r.waitForModals(t, 1)
			if n := len(r.slack.Views(bob.id)); n != 1 {
				t.Errorf("%d forms opened for bob, want 1", n)
			}
			if n := len(r.slack.Views(alice.id)); n != 0 {
				t.Errorf("%d forms opened for alice, want none", n)
			}
		}},
		{"a limited order submission keeps the form open with a field error", func(t *testing.T, r *limitRig) {
			r.burn(t, alice, 100)
			r.advance(15 * time.Second)
			status, body := r.send(t, "/slack/interactions", submitOrder(alice), false)
			if status != 200 || !strings.Contains(body, `"response_action":"errors"`) || !strings.Contains(body, `"drink"`) ||
				!strings.Contains(body, "wait 45 seconds, then press Place order again") {
				t.Fatalf("limited submission: %d %s", status, body)
			}
			r.advance(45 * time.Second)
			if status, body := r.send(t, "/slack/interactions", submitOrder(alice), false); status != 200 || body != "" {
				t.Fatalf("submission after the wait: %d %q, want the empty 200 that closes the form", status, body)
			}
			r.wantProduced(t, map[tally]int{{alice, events.TypeCommandCancel}: 100, {alice, events.TypeOrderSubmitted}: 1})
		}},
		{"commands and interactions share one budget; closing a form is acked as always", func(t *testing.T, r *limitRig) {
			r.burn(t, alice, 60)
			for range 40 {
				if status, _ := r.send(t, "/slack/interactions", r.click(alice, blocks.ActionMyUsual), false); status != 200 {
					t.Fatal(status)
				}
			}
			if status, body := r.send(t, "/slack/interactions", closeModal(alice), false); status != 200 || body != "" {
				t.Fatalf("view_closed over the limit: %d %q", status, body)
			}
			if _, body := r.send(t, "/slack/commands", r.command(alice, "/coffee-history"), false); !strings.Contains(body, slowDown) {
				t.Fatalf("/coffee-history over the limit: %q", body)
			}
			r.wantProduced(t, map[tally]int{{alice, events.TypeCommandCancel}: 60, {alice, events.TypeOrderUsual}: 40})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.run(t, newLimitRig(t))
		})
	}
}

func TestUserLimitConfiguration(t *testing.T) {
	t.Run("0 turns the limit off", func(t *testing.T) {
		r := newLimitRig(t, WithUserLimit(0))
		r.burn(t, user{"T1", "U1"}, 500)
	})
	t.Run("a smaller limit", func(t *testing.T) {
		r := newLimitRig(t, WithUserLimit(3))
		r.burn(t, user{"T1", "U1"}, 3)
		if _, body := r.send(t, "/slack/commands", r.command(user{"T1", "U1"}, "/coffee-cancel"), false); !strings.Contains(body, "up to 3 requests a minute") {
			t.Fatalf("4th: %q", body)
		}
	})
	tests := []struct {
		env     string
		want    int
		wantErr bool
	}{
		{"", DefaultUserLimit, false},
		{"250", 250, false},
		{"0", 0, false},
		{"-1", 0, true},
		{"lots", 0, true},
	}
	for _, tt := range tests {
		got, err := userLimit(func(k string) string {
			if k == "SLACK_USER_RATE_LIMIT" {
				return tt.env
			}
			return ""
		})
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("SLACK_USER_RATE_LIMIT=%q: %d, %v; want %d, error %v", tt.env, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestHealthReportsUptime(t *testing.T) {
	r := newLimitRig(t)
	r.advance(90*time.Second + 400*time.Millisecond)
	get := func(method, path string) (*http.Response, []byte) {
		t.Helper()
		req, err := http.NewRequest(method, r.srv.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := r.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, b
	}
	for _, method := range []string{http.MethodGet, http.MethodHead} {
		resp, body := get(method, "/health")
		if resp.StatusCode != 200 || resp.Header.Get("Cache-Control") != "no-store" {
			t.Fatalf("%s /health: %d %v", method, resp.StatusCode, resp.Header)
		}
		if method == http.MethodHead {
			continue
		}
		var got struct {
			Status        string `json:"status"`
			UptimeSeconds int64  `json:"uptime_seconds"`
			StartedAt     string `json:"started_at"`
		}
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatal(err)
		}
		if got.Status != "ok" || got.UptimeSeconds != 90 || got.StartedAt != "2026-12-03T09:00:00Z" {
			t.Fatalf("/health: %+v", got)
		}
	}
	// Only /health: the runtime's /health/liveness and /health/readiness
	// are not the ingress's to answer, and Kong exposes just /health.
	if resp, _ := get(http.MethodGet, "/health/readiness"); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("/health/readiness through the ingress's own routes: %d", resp.StatusCode)
	}
}
