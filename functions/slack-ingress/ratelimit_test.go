package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coffeebuddy/coffeebuddy/shared/blocks"
	"github.com/coffeebuddy/coffeebuddy/shared/config"
	"github.com/coffeebuddy/coffeebuddy/shared/slackapi"
	"github.com/coffeebuddy/coffeebuddy/shared/store"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
)

// These tests drive the per-user limit through the HTTP handler with signed
// requests, a fake clock, and in-memory fakes for Kafka, Slack and the
// database: the limit is decided before any of them is touched.

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

type fakeProducer struct {
	mu   sync.Mutex
	recs []*kgo.Record
}

func (p *fakeProducer) ProduceSync(_ context.Context, rs ...*kgo.Record) kgo.ProduceResults {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.recs = append(p.recs, rs...)
	out := make(kgo.ProduceResults, len(rs))
	for i, r := range rs {
		out[i] = kgo.ProduceResult{Record: r}
	}
	return out
}

func (p *fakeProducer) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.recs)
}

type fakeSlack struct {
	mu         sync.Mutex
	modals     int
	ephemerals []string // "response_url text"
}

func (s *fakeSlack) OpenModal(context.Context, string, []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.modals++
	return nil
}

func (s *fakeSlack) Ephemeral(_ context.Context, responseURL, text string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ephemerals = append(s.ephemerals, responseURL+" "+text)
	return nil
}

type fakeLookups struct{}

func (fakeLookups) Prefill(context.Context, string, string, string) (blocks.Prefill, error) {
	return blocks.Prefill{}, nil
}
func (fakeLookups) OrderingOpen(context.Context, string, string, time.Time) (bool, error) {
	return true, nil
}
func (fakeLookups) History(context.Context, string, string, int) ([]store.HistoryEntry, int, error) {
	return nil, 0, nil
}

// limitRig is an Ingress on a fake clock.
type limitRig struct {
	in    *Ingress
	h     http.Handler
	kafka *fakeProducer
	slack *fakeSlack
	reg   *prometheus.Registry
	now   time.Time
}

func newLimitRig(t *testing.T, opts ...Option) *limitRig {
	t.Helper()
	r := &limitRig{kafka: &fakeProducer{}, slack: &fakeSlack{}, reg: prometheus.NewRegistry(),
		now: time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)}
	opts = append([]Option{withClock(func() time.Time { return r.now })}, opts...)
	v := slackapi.NewVerifier(config.StaticSecret("SLACK_SIGNING_SECRET", secret), 0, func() time.Time { return r.now }, slog.New(slog.DiscardHandler))
	r.in = newIngress(v, r.kafka, r.slack, fakeLookups{}, 10*time.Minute,
		slog.New(slog.DiscardHandler), r.reg, opts...)
	r.h = r.in.routes()
	return r
}

func (r *limitRig) advance(d time.Duration) { r.now = r.now.Add(d) }

// send posts body to path, signed at the rig's clock (badSig: signed with
// another secret).
func (r *limitRig) send(t *testing.T, path, body string, badSig bool) (int, string) {
	t.Helper()
	key := secret
	if badSig {
		key = "not-the-secret"
	}
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set(slackapi.HeaderTimestamp, strconv.FormatInt(r.now.Unix(), 10))
	req.Header.Set(slackapi.HeaderSignature, slackapi.Sign(key, r.now.Unix(), []byte(body)))
	rec := httptest.NewRecorder()
	r.h.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
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

// user is one Slack person sending requests.
type user struct{ team, id string }

func (u user) command(name string) string {
	return url.Values{
		"team_id": {u.team}, "channel_id": {"C1"}, "user_id": {u.id}, "user_name": {"someone"},
		"command": {name}, "text": {""}, "response_url": {"https://hooks.slack.com/commands/T/1/x"},
		"trigger_id": {"trigger-1"},
	}.Encode()
}

func (u user) click(action string) string {
	b, _ := json.Marshal(map[string]any{
		"type": "block_actions", "team": map[string]string{"id": u.team}, "user": map[string]string{"id": u.id, "name": "someone"},
		"channel": map[string]string{"id": "C1"}, "response_url": "https://hooks.slack.com/actions/T/1/click-" + u.id,
		"trigger_id": "trigger-2",
		"actions":    []map[string]string{{"action_id": action, "block_id": "run_actions", "value": "run-1"}},
	})
	return url.Values{"payload": {string(b)}}.Encode()
}

func (u user) submitOrder() string {
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

func (u user) closeModal() string {
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
		if status, body := r.send(t, "/slack/commands", u.command("/coffee-cancel"), false); status != 200 || !strings.Contains(body, "Cancelling") {
			t.Fatalf("request %d of %s: %d %s", i+1, u.id, status, body)
		}
	}
}

func TestPerUserLimitThroughHandler(t *testing.T) {
	alice, bob, aliceElsewhere := user{"T1", "UALICE"}, user{"T1", "UBOB"}, user{"T2", "UALICE"}
	const slowDown = "That's a lot of CoffeeBuddy in one minute"
	tests := []struct {
		name string
		run  func(t *testing.T, r *limitRig)
	}{
		{"the 101st command in a minute gets a polite ephemeral and does nothing", func(t *testing.T, r *limitRig) {
			r.burn(t, alice, 100)
			r.advance(20 * time.Second)
			status, body := r.send(t, "/slack/commands", alice.command("/coffee"), false)
			var ack blocks.Ephemeral
			if err := json.Unmarshal([]byte(body), &ack); err != nil || status != 200 || ack.ResponseType != "ephemeral" ||
				!strings.Contains(ack.Text, slowDown) || !strings.Contains(ack.Text, "up to 100 requests a minute") ||
				!strings.Contains(ack.Text, "try again in 40 seconds") {
				t.Fatalf("limited /coffee: %d %q (%v)", status, body, err)
			}
			r.in.told.Wait()
			if n := r.kafka.count(); n != 100 {
				t.Errorf("%d events produced, want the 100 accepted", n)
			}
			if r.slack.modals != 0 {
				t.Errorf("a limited /coffee opened the order form")
			}
			if got := r.limitedTotal(t, "commands"); got != 1 {
				t.Errorf("commands refusals counted %v, want 1", got)
			}
		}},
		{"one user's burst does not limit another, nor the same id in another workspace", func(t *testing.T, r *limitRig) {
			r.burn(t, alice, 100)
			if _, body := r.send(t, "/slack/commands", alice.command("/coffee-cancel"), false); !strings.Contains(body, slowDown) {
				t.Fatalf("alice's 101st: %q", body)
			}
			r.burn(t, bob, 100)
			r.burn(t, aliceElsewhere, 100)
			if n := r.kafka.count(); n != 300 {
				t.Errorf("%d events, want 300", n)
			}
		}},
		{"the window recovers: a minute after the first request there is room again", func(t *testing.T, r *limitRig) {
			r.burn(t, alice, 50)
			r.advance(30 * time.Second)
			r.burn(t, alice, 50)
			r.advance(29 * time.Second)
			if _, body := r.send(t, "/slack/commands", alice.command("/coffee-cancel"), false); !strings.Contains(body, "try again in 1 second.") {
				t.Fatalf("at 59 s: %q", body)
			}
			r.advance(time.Second) // the first 50 leave the window
			r.burn(t, alice, 50)
			if _, body := r.send(t, "/slack/commands", alice.command("/coffee-cancel"), false); !strings.Contains(body, "try again in 30 seconds") {
				t.Fatalf("after 50 more at 60 s: %q", body)
			}
			r.advance(30 * time.Second)
			r.burn(t, alice, 50)
		}},
		{"unverified requests never count against the user they name", func(t *testing.T, r *limitRig) {
			for range 150 {
				if status, _ := r.send(t, "/slack/commands", alice.command("/coffee-cancel"), true); status != 401 {
					t.Fatalf("forged request: %d, want 401", status)
				}
			}
			r.burn(t, alice, 100)
			if got := r.limitedTotal(t, "commands"); got != 0 {
				t.Errorf("refusals %v after forged requests, want 0", got)
			}
		}},
		{"a limited click is acked empty and the person is told once through its response_url", func(t *testing.T, r *limitRig) {
			r.burn(t, alice, 100)
			for i := range 3 {
				status, body := r.send(t, "/slack/interactions", alice.click(blocks.ActionVolunteer), false)
				if status != 200 || body != "" {
					t.Fatalf("limited click %d: %d %q, want an empty 200", i+1, status, body)
				}
			}
			r.in.told.Wait()
			if len(r.slack.ephemerals) != 1 || !strings.HasPrefix(r.slack.ephemerals[0], "https://hooks.slack.com/actions/T/1/click-UALICE ") ||
				!strings.Contains(r.slack.ephemerals[0], slowDown) {
				t.Fatalf("ephemerals %q, want one through the click's response_url", r.slack.ephemerals)
			}
			if n := r.kafka.count(); n != 100 {
				t.Errorf("%d events, want 100 (no click produced)", n)
			}
			if got := r.limitedTotal(t, "interactions"); got != 3 {
				t.Errorf("interactions refusals %v, want 3", got)
			}
			// Told again in the next spell, not before.
			r.advance(time.Minute)
			r.burn(t, alice, 100)
			r.send(t, "/slack/interactions", alice.click(blocks.ActionVolunteer), false)
			r.in.told.Wait()
			if len(r.slack.ephemerals) != 2 {
				t.Fatalf("%d ephemerals after a second spell, want 2", len(r.slack.ephemerals))
			}
		}},
		{"a limited Add my order opens no form", func(t *testing.T, r *limitRig) {
			r.burn(t, alice, 100)
			if status, _ := r.send(t, "/slack/interactions", alice.click(blocks.ActionAddOrder), false); status != 200 {
				t.Fatalf("status %d", status)
			}
			r.in.told.Wait()
			if r.slack.modals != 0 {
				t.Fatalf("order form opened for a limited click")
			}
		}},
		{"a limited order submission keeps the form open with a field error", func(t *testing.T, r *limitRig) {
			r.burn(t, alice, 100)
			r.advance(15 * time.Second)
			status, body := r.send(t, "/slack/interactions", alice.submitOrder(), false)
			if status != 200 || !strings.Contains(body, `"response_action":"errors"`) || !strings.Contains(body, `"drink"`) ||
				!strings.Contains(body, "wait 45 seconds, then press Place order again") {
				t.Fatalf("limited submission: %d %s", status, body)
			}
			r.advance(45 * time.Second)
			if status, body := r.send(t, "/slack/interactions", alice.submitOrder(), false); status != 200 || body != "" {
				t.Fatalf("submission after the wait: %d %q, want the empty 200 that closes the form", status, body)
			}
			if n := r.kafka.count(); n != 101 {
				t.Errorf("%d events, want 101", n)
			}
		}},
		{"commands and interactions share one budget; closing a form is acked as always", func(t *testing.T, r *limitRig) {
			r.burn(t, alice, 60)
			for range 40 {
				if status, _ := r.send(t, "/slack/interactions", alice.click(blocks.ActionMyUsual), false); status != 200 {
					t.Fatal(status)
				}
			}
			if status, body := r.send(t, "/slack/interactions", alice.closeModal(), false); status != 200 || body != "" {
				t.Fatalf("view_closed over the limit: %d %q", status, body)
			}
			if _, body := r.send(t, "/slack/commands", alice.command("/coffee-history"), false); !strings.Contains(body, slowDown) {
				t.Fatalf("/coffee-history over the limit: %q", body)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
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
		if _, body := r.send(t, "/slack/commands", user{"T1", "U1"}.command("/coffee-cancel"), false); !strings.Contains(body, "up to 3 requests a minute") {
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
	for _, method := range []string{http.MethodGet, http.MethodHead} {
		rec := httptest.NewRecorder()
		r.h.ServeHTTP(rec, httptest.NewRequest(method, "/health", nil))
		if rec.Code != 200 || rec.Header().Get("Cache-Control") != "no-store" {
			t.Fatalf("%s /health: %d %v", method, rec.Code, rec.Header())
		}
		if method == http.MethodHead {
			continue
		}
		var got struct {
			Status        string `json:"status"`
			UptimeSeconds int64  `json:"uptime_seconds"`
			StartedAt     string `json:"started_at"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
			t.Fatal(err)
		}
		if got.Status != "ok" || got.UptimeSeconds != 90 || got.StartedAt != "2026-12-03T09:00:00Z" {
			t.Fatalf("/health: %+v", got)
		}
	}
	// Only /health: the runtime's /health/liveness and /health/readiness
	// are not the ingress's to answer, and Kong exposes just /health.
	rec := httptest.NewRecorder()
	r.h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/health/readiness", nil))
	if rec.Code != http.StatusNotFound {
		t.Fatalf("/health/readiness through the ingress's own routes: %d", rec.Code)
	}
}
