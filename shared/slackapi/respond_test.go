package slackapi_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/coffeebuddy/coffeebuddy/shared/config"
	"github.com/coffeebuddy/coffeebuddy/shared/slackapi"
	"github.com/coffeebuddy/coffeebuddy/shared/slackstandin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/slack-go/slack"
)

// newClients returns clients of a fresh stand-in, counting in a registry.
func newClients(t *testing.T, opts slackstandin.Options) (*slackstandin.Server, *slackapi.Clients, *prometheus.Registry) {
	t.Helper()
	srv := slackstandin.NewTestServer(t, opts)
	reg := prometheus.NewRegistry()
	return srv, slackapi.NewClients(token, srv.APIURL(), slackapi.WithMetrics(reg)), reg
}

func errorsCounted(t *testing.T, reg *prometheus.Registry, method, code string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != slackapi.ErrorsMetric {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["method"] == method && labels["error"] == code {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func TestCodeAndIsPermanent(t *testing.T) {
	for _, tc := range []struct {
		name      string
		err       error
		code      string
		permanent bool
	}{
		{"nil", nil, "", false},
		{"not in channel", slack.SlackErrorResponse{Err: "not_in_channel"}, "not_in_channel", true},
		{"wrapped user not in channel", fmt.Errorf("chat.postEphemeral: %w", slack.SlackErrorResponse{Err: "user_not_in_channel"}), "user_not_in_channel", true},
		{"archived", slack.SlackErrorResponse{Err: "is_archived"}, "is_archived", true},
		{"invalid blocks", slack.SlackErrorResponse{Err: "invalid_blocks"}, "invalid_blocks", true},
		{"Slack's own trouble", slack.SlackErrorResponse{Err: "internal_error"}, "internal_error", false},
		{"fatal", slack.SlackErrorResponse{Err: "fatal_error"}, "fatal_error", false},
		{"token being rotated: revoked", slack.SlackErrorResponse{Err: "token_revoked"}, "token_revoked", false},
		{"token being rotated: not yet the new one", slack.SlackErrorResponse{Err: "invalid_auth"}, "invalid_auth", false},
		{"expiring token expired", slack.SlackErrorResponse{Err: "token_expired"}, "token_expired", false},
		{"app uninstalled", slack.SlackErrorResponse{Err: "account_inactive"}, "account_inactive", true},
		{"expired response_url", &slackapi.ResponseError{Status: 404, Code: "expired_url"}, "expired_url", true},
		{"response_url 503", &slackapi.ResponseError{Status: 503, Code: "service_unavailable"}, "service_unavailable", false},
		{"rate limited", &slack.RateLimitedError{}, "", false},
		{"5xx", slack.StatusCodeError{Code: 502}, "", false},
		{"404 from the Web API", slack.StatusCodeError{Code: 404}, "", true},
		{"429 without Retry-After", slack.StatusCodeError{Code: 429}, "", false},
		{"transport", errors.New("connection refused"), "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := slackapi.Code(tc.err); got != tc.code {
				t.Errorf("Code = %q, want %q", got, tc.code)
			}
			if got := slackapi.IsPermanent(tc.err); got != tc.permanent {
				t.Errorf("IsPermanent = %v, want %v", got, tc.permanent)
			}
		})
	}
}

// TestRefusalsCounted: every ok:false answer is counted by method and code,
// and leaves the answer intact for slack-go to decode.
func TestRefusalsCounted(t *testing.T) {
	srv, c, reg := newClients(t, slackstandin.Options{Conversations: []slackstandin.Conversation{
		{ID: "C0OUT", Name: "outside"},
		{ID: "C0IN", Name: "inside", BotMember: true, Members: []string{"U1"}},
	}})
	cli, err := c.Get()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	_, _, err = cli.PostMessageContext(ctx, "C0OUT", slack.MsgOptionText("hi", false))
	if slackapi.Code(err) != "not_in_channel" || !slackapi.IsPermanent(err) {
		t.Fatalf("post outside: %v, want not_in_channel", err)
	}
	_, err = cli.PostEphemeralContext(ctx, "C0IN", "U2", slack.MsgOptionText("hi", false))
	if slackapi.Code(err) != "user_not_in_channel" {
		t.Fatalf("ephemeral to a stranger: %v, want user_not_in_channel", err)
	}
	if _, _, err := cli.PostMessageContext(ctx, "C0IN", slack.MsgOptionText("hi", false)); err != nil {
		t.Fatalf("post inside: %v", err)
	}
	for _, tc := range []struct {
		method, code string
		want         float64
	}{
		{"chat.postMessage", "not_in_channel", 1},
		{"chat.postEphemeral", "user_not_in_channel", 1},
		{"chat.postMessage", "user_not_in_channel", 0},
	} {
		if got := errorsCounted(t, reg, tc.method, tc.code); got != tc.want {
			t.Errorf("%s{%s,%s} = %v, want %v", slackapi.ErrorsMetric, tc.method, tc.code, got, tc.want)
		}
	}
	if n := len(srv.Messages("C0IN")); n != 1 {
		t.Errorf("%d messages inside, want 1", n)
	}
}

// TestRespond: a response_url reaches the person wherever they were, even
// where the app could not post; Slack's limits come back as permanent
// refusals, counted under method response_url.
func TestRespond(t *testing.T) {
	srv, c, reg := newClients(t, slackstandin.Options{Conversations: []slackstandin.Conversation{
		{ID: "C0OUT", Name: "outside", Members: []string{"U1"}},
	}})
	ctx := context.Background()
	url := srv.NewResponseURL("C0OUT", "U1")
	for i := range slackstandin.ResponseURLMaxUses {
		if err := c.Respond(ctx, url, slackapi.Reply{Text: fmt.Sprintf("answer %d", i+1)}); err != nil {
			t.Fatalf("use %d: %v", i+1, err)
		}
	}
	got := srv.Ephemerals("U1")
	if len(got) != slackstandin.ResponseURLMaxUses || got[0].Channel != "C0OUT" || got[0].Text != "answer 1" {
		t.Fatalf("ephemerals: %+v", got)
	}
	err := c.Respond(ctx, url, slackapi.Reply{Text: "one too many"})
	var re *slackapi.ResponseError
	if !errors.As(err, &re) || re.Code != "expired_url" || !slackapi.IsPermanent(err) {
		t.Fatalf("sixth use: %v, want a permanent expired_url", err)
	}
	if strings.Contains(err.Error(), url) {
		t.Errorf("the error shows the response_url: %v", err)
	}
	if n := errorsCounted(t, reg, slackapi.MethodResponseURL, "expired_url"); n != 1 {
		t.Errorf("expired_url counted %v times, want 1", n)
	}

	// Slack's rate limit on a response_url is retried, not dropped.
	srv.SetFault(slackstandin.MethodResponseURL, slackstandin.FailN(1, http.StatusTooManyRequests, 0))
	var rl *slack.RateLimitedError
	if err := c.Respond(ctx, srv.NewResponseURL("C0OUT", "U1"), slackapi.Reply{Text: "x"}); !errors.As(err, &rl) || slackapi.IsPermanent(err) {
		t.Fatalf("429: %v, want a RateLimitedError", err)
	}
}

// TestRespondOnlyToSlack: a response_url that does not point at Slack (or
// at the configured API host) is never called.
func TestRespondOnlyToSlack(t *testing.T) {
	called := false
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { called = true }))
	defer other.Close()
	_, c, _ := newClients(t, slackstandin.Options{})
	for _, u := range []string{other.URL + "/_standin/response/x", "https://hooks.slack.com.evil.example/actions/1", "not a url"} {
		err := c.Respond(context.Background(), u, slackapi.Reply{Text: "x"})
		if slackapi.Code(err) != "invalid_response_url" || !slackapi.IsPermanent(err) {
			t.Errorf("%s: %v, want a permanent invalid_response_url", u, err)
		}
	}
	if called {
		t.Fatal("a foreign host was called")
	}
}

// TestTellAndInform: without a response_url the answer is an ephemeral in
// the channel; a refusal there is permanent, and Inform logs it and lets
// the caller go on, while a rate limit is still returned.
func TestTellAndInform(t *testing.T) {
	srv, c, _ := newClients(t, slackstandin.Options{Conversations: []slackstandin.Conversation{
		{ID: "C0IN", Name: "inside", BotMember: true, Members: []string{"U1"}},
	}})
	ctx := context.Background()
	if err := c.Tell(ctx, slackapi.Answer{Channel: "C0IN", User: "U1"}, slackapi.Reply{Text: "hello"}); err != nil {
		t.Fatal(err)
	}
	if e := srv.Ephemerals("U1"); len(e) != 1 || e[0].Via != "chat.postEphemeral" {
		t.Fatalf("ephemerals: %+v", e)
	}
	stranger := slackapi.Answer{Channel: "C0IN", User: "U2"}
	if err := c.Tell(ctx, stranger, slackapi.Reply{Text: "hello"}); slackapi.Code(err) != "user_not_in_channel" {
		t.Fatalf("Tell a stranger: %v", err)
	}
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	if err := c.Inform(ctx, log, "greet", stranger, slackapi.Reply{Text: "hello"}); err != nil {
		t.Fatalf("Inform a stranger: %v, want nil (logged)", err)
	}
	if !strings.Contains(logs.String(), `"slack_error":"user_not_in_channel"`) {
		t.Errorf("refusal not logged: %s", logs.String())
	}
	srv.SetFault("chat.postEphemeral", slackstandin.FailN(1, http.StatusTooManyRequests, 0))
	var rl *slack.RateLimitedError
	if err := c.Inform(ctx, log, "greet", slackapi.Answer{Channel: "C0IN", User: "U1"}, slackapi.Reply{Text: "hi"}); !errors.As(err, &rl) {
		t.Fatalf("Inform rate limited: %v, want the RateLimitedError", err)
	}
}

// TestMetricsShareARegistry: two Clients on one registry share counters.
func TestMetricsShareARegistry(t *testing.T) {
	srv := slackstandin.NewTestServer(t, slackstandin.Options{})
	reg := prometheus.NewRegistry()
	a := slackapi.NewClients(config.StaticSecret("SLACK_BOT_TOKEN", "xoxb-wrong"), srv.APIURL(), slackapi.WithMetrics(reg))
	b := slackapi.NewClients(config.StaticSecret("SLACK_BOT_TOKEN", "xoxb-wrong"), srv.APIURL(), slackapi.WithMetrics(reg))
	for _, c := range []*slackapi.Clients{a, b} {
		cli, _ := c.Get()
		if _, err := cli.AuthTestContext(context.Background()); slackapi.Code(err) != "invalid_auth" {
			t.Fatalf("auth.test: %v", err)
		}
	}
	if n := testutil.CollectAndCount(reg, slackapi.ErrorsMetric); n != 1 {
		t.Fatalf("%d series, want one shared", n)
	}
	if got := errorsCounted(t, reg, "auth.test", "invalid_auth"); got != 2 {
		t.Fatalf("invalid_auth counted %v, want 2", got)
	}
}
