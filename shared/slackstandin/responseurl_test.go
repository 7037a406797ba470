package slackstandin_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/coffeebuddy/coffeebuddy/shared/slackstandin"
)

// postResponse posts v as JSON to a response_url and decodes the answer.
func postResponse(t *testing.T, u string, v any) (int, map[string]any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, u, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("decoding the response_url answer: %v", err)
	}
	return resp.StatusCode, out
}

// A response_url takes five accepted posts; refused ones do not count.
// The sixth is answered like an expired URL.
func TestResponseURLUses(t *testing.T) {
	srv := slackstandin.NewTestServer(t, slackstandin.Options{})
	u := srv.NewResponseURL(slackstandin.DefaultChannelID, "U1")
	steps := []struct {
		body   any
		status int
		err    string
	}{
		{map[string]any{"text": "1"}, 200, ""},
		{map[string]any{"text": ""}, 400, "no_text"}, // refused: not a use
		{map[string]any{"text": "2", "response_type": "in_channel"}, 200, ""},
		{map[string]any{"text": "3"}, 200, ""},
		{map[string]any{"text": "4"}, 200, ""},
		{map[string]any{"text": "5"}, 200, ""},
		{map[string]any{"text": "6"}, 404, "expired_url"},
		{map[string]any{"text": "7"}, 404, "expired_url"},
	}
	for i, st := range steps {
		status, out := postResponse(t, u, st.body)
		if status != st.status || (st.err == "" && out["ok"] != true) || (st.err != "" && out["error"] != st.err) {
			t.Errorf("post %d = %d %v, want %d %q", i+1, status, out, st.status, st.err)
		}
	}
	if n := len(srv.Ephemerals("U1")) + len(srv.Messages(slackstandin.DefaultChannelID)); n != slackstandin.ResponseURLMaxUses {
		t.Errorf("%d messages shown, want %d", n, slackstandin.ResponseURLMaxUses)
	}
	if c := srv.Calls(slackstandin.MethodResponseURL); len(c) != len(steps) || c[6].Status != http.StatusNotFound {
		t.Errorf("recorded %d response_url calls", len(c))
	}
}

func TestResponseURLExpires(t *testing.T) {
	tests := []struct {
		name   string
		ttl    time.Duration
		wait   time.Duration
		status int
	}{
		{"within the lifetime", time.Hour, 0, http.StatusOK},
		{"past the lifetime", 20 * time.Millisecond, 60 * time.Millisecond, http.StatusNotFound},
		{"no limit", -1, 60 * time.Millisecond, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := slackstandin.NewTestServer(t, slackstandin.Options{ResponseURLTTL: tt.ttl})
			u := srv.NewResponseURL(slackstandin.DefaultChannelID, "U1")
			time.Sleep(tt.wait) // let the URL outlive a short lifetime
			status, out := postResponse(t, u, map[string]any{"text": "Your order is in"})
			if status != tt.status {
				t.Fatalf("answer = %d %v, want %d", status, out, tt.status)
			}
			if status == http.StatusNotFound && out["error"] != "expired_url" {
				t.Errorf("answer = %v, want expired_url", out)
			}
		})
	}
	if slackstandin.DefaultResponseURLTTL != 30*time.Minute || slackstandin.ResponseURLMaxUses != 5 {
		t.Errorf("limits %s / %d, want Slack's 30 minutes / 5 uses", slackstandin.DefaultResponseURLTTL, slackstandin.ResponseURLMaxUses)
	}
}

// A response_url reaches the user where they clicked or typed, whether or
// not the app is a member there; only an archived channel refuses it.
func TestResponseURLIgnoresMembership(t *testing.T) {
	srv := slackstandin.NewTestServer(t, slackstandin.Options{Conversations: registry})
	tests := []struct {
		channel, user string
		inChannel     bool
		status        int
		err           string
	}{
		{"CPRIVOUT", "U9", false, http.StatusOK, ""}, // private, neither the app nor U9 in it
		{"CPUBOUT", "U9", true, http.StatusOK, ""},
		{"DU1", "U3", false, http.StatusOK, ""}, // a DM forwarded to U3
		{"CARCH", "U1", false, http.StatusGone, "channel_is_archived"},
		{"CARCH", "U1", true, http.StatusGone, "channel_is_archived"},
	}
	for _, tt := range tests {
		u := srv.NewResponseURL(tt.channel, tt.user)
		body := map[string]any{"text": "Only the runner can complete"}
		if tt.inChannel {
			body["response_type"] = "in_channel"
		}
		status, out := postResponse(t, u, body)
		if status != tt.status || (tt.err != "" && out["error"] != tt.err) {
			t.Errorf("%s for %s (in_channel %v) = %d %v, want %d %q", tt.channel, tt.user, tt.inChannel, status, out, tt.status, tt.err)
		}
	}
	if e := srv.Ephemerals("U9"); len(e) != 1 || e[0].Channel != "CPRIVOUT" {
		t.Errorf("U9's ephemerals = %+v", e)
	}
	if m := srv.Messages("CPUBOUT"); len(m) != 1 || m[0].Via != slackstandin.MethodResponseURL {
		t.Errorf("CPUBOUT = %+v", m)
	}
	if m := srv.Messages("CARCH"); len(m) != 0 {
		t.Errorf("an archived channel took a message: %+v", m)
	}
}
