package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coffeebuddy/coffeebuddy/shared/config"
	"github.com/coffeebuddy/coffeebuddy/shared/events"
	"github.com/coffeebuddy/coffeebuddy/shared/kafka"
	"github.com/coffeebuddy/coffeebuddy/shared/kafka/kafkatest"
	"github.com/coffeebuddy/coffeebuddy/shared/logbuf"
	"github.com/coffeebuddy/coffeebuddy/shared/postgres/pgtest"
	"github.com/coffeebuddy/coffeebuddy/shared/slackapi"
	"github.com/coffeebuddy/coffeebuddy/shared/slackstandin"
	"github.com/prometheus/client_golang/prometheus"
)

const secret = "test-signing-secret"

func TestMain(m *testing.M) { pgtest.Main(m) }

type rig struct {
	db    *pgtest.DB
	srv   *httptest.Server
	kafka *kafkatest.Cluster
	slack *slackstandin.Server
	logs  *logbuf.Buffer // the handler logs from background goroutines
	now   time.Time
}

func newRig(t *testing.T) *rig {
	t.Helper()
	kc := kafkatest.New(t)
	cl, err := kafka.NewClient(kc.Brokers, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	sl := slackstandin.NewTestServer(t, slackstandin.Options{})
	logs := &logbuf.Buffer{}
	r := &rig{db: pgtest.New(t), kafka: kc, slack: sl, logs: logs, now: time.Now()}
	clients := slackapi.NewClients(config.StaticSecret("SLACK_BOT_TOKEN", slackstandin.DefaultBotToken), sl.APIURL())
	v := slackapi.NewVerifier(config.StaticSecret("SLACK_SIGNING_SECRET", secret), 0, time.Now, slog.New(slog.DiscardHandler))
	h := New(v, cl, slackModals{clients}, dbLookups{r.db.Pool}, 10*time.Minute,
		slog.New(slog.NewJSONHandler(logs, nil)), nil)
	r.srv = httptest.NewServer(h)
	t.Cleanup(r.srv.Close)
	return r
}

func commandBody(text string) string {
	return url.Values{
		"token": {"gIkuvaNzQIHg97ATvDxqgjtO"}, "team_id": {"T0001"}, "team_domain": {"example"},
		"channel_id": {"C2147483705"}, "channel_name": {"coffee"}, "user_id": {"U2147483697"},
		"user_name": {"Steve"}, "command": {"/coffee"}, "text": {text},
		"response_url": {"https://hooks.slack.com/commands/1234/5678"},
		"trigger_id":   {"13345224609.738474920.8088930838d88f008e0"}, "api_app_id": {"A123456"},
	}.Encode()
}

// post sends body to path signed with sig at ts (sig "" = sign correctly).
func (r *rig) post(t *testing.T, path, body string, ts int64, sig string) (int, string) {
	t.Helper()
	if sig == "" {
		sig = slackapi.Sign(secret, ts, []byte(body))
	}
	req, _ := http.NewRequest(http.MethodPost, r.srv.URL+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set(slackapi.HeaderTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(slackapi.HeaderSignature, sig)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestRejectsUnverifiedRequestsBeforeParsing(t *testing.T) {
	r := newRig(t)
	now := time.Now().Unix()
	body := commandBody("")
	tests := []struct {
		name     string
		path     string
		body     string
		ts       int64
		sig      string
		want     int
		wantBody string
	}{
		{"wrong signature", "/slack/commands", body, now, "v0=" + strings.Repeat("ab", 32), 401, "does not match"},
		{"signed with another secret", "/slack/commands", body, now, slackapi.Sign("other", now, []byte(body)), 401, "does not match"},
		{"stale timestamp", "/slack/commands", body, now - 301, "", 401, "5-minute window"},
		{"malformed signature", "/slack/commands", body, now, "-", 401, "does not match"},
		{"interaction with bad signature", "/slack/interactions", "payload=%7B%7D", now, "v0=00", 401, "does not match"},
		{"oversized body", "/slack/commands", strings.Repeat("a", MaxBody+1), now, "", 413, "exceeds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, got := r.post(t, tt.path, tt.body, tt.ts, tt.sig)
			if status != tt.want || !strings.Contains(got, tt.wantBody) {
				t.Fatalf("got %d %q, want %d containing %q", status, got, tt.want, tt.wantBody)
			}
		})
	}
	// Nothing unverified reached Kafka.
	if recs := r.kafka.Consume(t, events.TopicSlackEvents, 1, 500*time.Millisecond); len(recs) != 0 {
		t.Fatalf("%d records produced for rejected requests", len(recs))
	}
	if n := len(r.slack.Calls("views.open")); n != 0 {
		t.Fatalf("views.open called %d times for rejected requests", n)
	}
}

func TestCoffeeCommandIsDurableBeforeAck(t *testing.T) {
	r := newRig(t)
	status, body := r.post(t, "/slack/commands", commandBody("5"), time.Now().Unix(), "")
	if status != 200 {
		t.Fatalf("status %d %s", status, body)
	}
	var ack struct {
		ResponseType string `json:"response_type"`
		Text         string `json:"text"`
	}
	if err := json.Unmarshal([]byte(body), &ack); err != nil || ack.ResponseType != "ephemeral" {
		t.Fatalf("ack %q: %v", body, err)
	}
	// Acked means durable: the record is already in Kafka.
	recs := r.kafka.Consume(t, events.TopicSlackEvents, 1, 5*time.Second)
	if len(recs) != 1 {
		t.Fatalf("%d records in %s after the ack, want 1", len(recs), events.TopicSlackEvents)
	}
	ev, err := kafka.Event(recs[0])
	if err != nil {
		t.Fatal(err)
	}
	if ev.Type() != events.TypeCommandCoffee || ev.Source() != events.SourceIngress || string(recs[0].Key) != "T0001/C2147483705" {
		t.Fatalf("event %s from %s key %s", ev.Type(), ev.Source(), recs[0].Key)
	}
	var cmd events.SlashCommand
	if err := ev.DataAs(&cmd); err != nil {
		t.Fatal(err)
	}
	if cmd.UserID != "U2147483697" || cmd.Text != "5" || cmd.TriggerID == "" {
		t.Fatalf("payload %+v", cmd)
	}
	// The order modal opens with the request's trigger_id.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	calls, err := r.slack.WaitForCalls(ctx, "views.open", 1)
	if err != nil {
		t.Fatal(err)
	}
	if calls[0].Params["trigger_id"] != "13345224609.738474920.8088930838d88f008e0" || !strings.Contains(calls[0].Params["view"], "order_submit") {
		t.Fatalf("views.open params %v", calls[0].Params)
	}
	// Logs carry command metadata as JSON, never the token or the secret.
	logs := r.logs.String()
	for _, banned := range []string{"gIkuvaNzQIHg97ATvDxqgjtO", secret, "hooks.slack.com"} {
		if strings.Contains(logs, banned) {
			t.Errorf("logs leak %q:\n%s", banned, logs)
		}
	}
	var line map[string]any
	for _, l := range strings.Split(strings.TrimSpace(logs), "\n") {
		if strings.Contains(l, "command accepted") {
			if err := json.Unmarshal([]byte(l), &line); err != nil {
				t.Fatal(err)
			}
		}
	}
	if line["user"] != "U2147483697" || line["channel"] != "C2147483705" || line["command"] != "/coffee" || line["at"] == nil {
		t.Errorf("command log line lacks metadata: %v", line)
	}
}

func TestBadLastCallGetsUsageAndProducesNothing(t *testing.T) {
	r := newRig(t)
	status, body := r.post(t, "/slack/commands", commandBody("whenever"), time.Now().Unix(), "")
	if status != 200 || !strings.Contains(body, "/coffee 15") {
		t.Fatalf("got %d %s", status, body)
	}
	if recs := r.kafka.Consume(t, events.TopicSlackEvents, 1, 500*time.Millisecond); len(recs) != 0 {
		t.Fatalf("%d records produced for a rejected command", len(recs))
	}
}

func TestOrderSubmissionFieldErrors(t *testing.T) {
	r := newRig(t)
	submit := func(drink, size, custom string) (int, string) {
		payload := map[string]any{
			"type": "view_submission", "team": map[string]string{"id": "T0001"},
			"user": map[string]string{"id": "U1"},
			"view": map[string]any{
				"callback_id":      "order_submit",
				"private_metadata": `{"team_id":"T0001","channel_id":"C1"}`,
				"state": map[string]any{"values": map[string]any{
					"drink":          map[string]any{"drink": map[string]any{"type": "static_select", "selected_option": map[string]any{"value": drink}}},
					"size":           map[string]any{"size": map[string]any{"type": "static_select", "selected_option": map[string]any{"value": size}}},
					"customizations": map[string]any{"customizations": map[string]any{"type": "plain_text_input", "value": custom}},
				}},
			},
		}
		b, _ := json.Marshal(payload)
		return r.post(t, "/slack/interactions", url.Values{"payload": {string(b)}}.Encode(), time.Now().Unix(), "")
	}
	status, body := submit("latte", "large", strings.Repeat("☕", 201))
	if status != 200 || !strings.Contains(body, `"response_action":"errors"`) || !strings.Contains(body, "at most 200 characters") {
		t.Fatalf("too-long customization: %d %s", status, body)
	}
	status, body = submit("tea", "large", "")
	if !strings.Contains(body, `"drink"`) {
		t.Fatalf("unknown drink: %d %s", status, body)
	}
	status, body = submit("mocha", "small", strings.Repeat("☕", 200))
	if status != 200 || body != "" {
		t.Fatalf("valid order: %d %q", status, body)
	}
	if recs := r.kafka.Consume(t, events.TopicSlackEvents, 1, 5*time.Second); len(recs) != 1 {
		t.Fatalf("%d records for one valid submission, want 1", len(recs))
	}
}

func TestMissingSignatureHeadersIs401(t *testing.T) {
	r := newRig(t)
	resp, err := http.Post(r.srv.URL+"/slack/commands", "application/x-www-form-urlencoded", strings.NewReader(commandBody("")))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 401 || !strings.Contains(string(b), "missing Slack signature") {
		t.Fatalf("got %d %q", resp.StatusCode, b)
	}
}

// TestSlackDocumentedExampleThroughHTTP replays Slack's documented signed
// request (secret, timestamp, body, signature from "Verifying requests from
// Slack") against the ingress with the clock set to that moment.
func TestSlackDocumentedExampleThroughHTTP(t *testing.T) {
	const (
		docSecret = "8f742231b10e8888abcd99yyyzzz85a5"
		docBody   = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
		docSig    = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
	)
	now := time.Unix(1531420618, 0)
	in := &Ingress{
		verifier: slackapi.NewVerifier(config.StaticSecret("SLACK_SIGNING_SECRET", docSecret), 0, func() time.Time { return now }, slog.New(slog.DiscardHandler)),
		log:      slog.New(slog.DiscardHandler),
		now:      func() time.Time { return now },
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "x"}, []string{"endpoint", "status"}),
		duration: newDurationHistogram(),
		previous: prometheus.NewCounter(prometheus.CounterOpts{Name: "y"}),
	}
	srv := httptest.NewServer(in.routes())
	defer srv.Close()
	send := func(sig string) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/slack/commands", strings.NewReader(docBody))
		req.Header.Set(slackapi.HeaderTimestamp, "1531420618")
		req.Header.Set(slackapi.HeaderSignature, sig)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	// Verified, parsed, and answered (it is not one of our commands).
	if status, body := send(docSig); status != 200 || !strings.Contains(body, "/webhook-collect") {
		t.Fatalf("documented request: %d %s", status, body)
	}
	// One flipped hex digit fails.
	if status, _ := send(docSig[:len(docSig)-1] + "4"); status != 401 {
		t.Fatalf("tampered signature: %d, want 401", status)
	}
	// Six minutes later the same request is stale.
	now = time.Unix(1531420618+360, 0)
	if status, body := send(docSig); status != 401 || !strings.Contains(body, "window") {
		t.Fatalf("stale request: %d %s", status, body)
	}
}
