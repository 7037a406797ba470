package slackstandin_test

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coffeebuddy/coffeebuddy/shared/slackstandin"
)

// faultMethods are the methods the all-methods fault is exercised on.
var faultMethods = []string{"auth.test", "chat.postMessage", "conversations.info"}

// postStatus calls method with valid arguments and returns the HTTP status
// and the Retry-After header.
func postStatus(t *testing.T, srv *slackstandin.Server, method string) (int, string) {
	t.Helper()
	form := url.Values{"channel": {slackstandin.DefaultChannelID}, "text": {"Coffee?"}}
	return postTo(t, srv.APIURL()+method, "Bearer "+srv.BotToken(), "application/x-www-form-urlencoded", form.Encode())
}

func postTo(t *testing.T, u, auth, contentType, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header.Get("Retry-After")
}

func TestFailFractionThroughSetFaultAll(t *testing.T) {
	const calls = 1000
	tests := []struct {
		fraction float64
		min, max int // failed calls
	}{
		{0, 0, 0},
		{-0.5, 0, 0},
		{1, calls, calls},
		{1.5, calls, calls},
		// Binomial(1000, 0.8): σ ≈ 12.6, so ±50 is about 4σ.
		{0.8, 750, 850},
		{0.2, 150, 250},
	}
	for _, tt := range tests {
		srv := slackstandin.NewTestServer(t, slackstandin.Options{})
		srv.SetFaultAll(slackstandin.FailFraction(tt.fraction, http.StatusTooManyRequests, 2*time.Second, 7))
		failed := 0
		for i := range calls {
			status, retryAfter := postStatus(t, srv, faultMethods[i%len(faultMethods)])
			switch status {
			case http.StatusTooManyRequests:
				failed++
				if retryAfter != "2" {
					t.Fatalf("fraction %v: 429 with Retry-After %q, want 2", tt.fraction, retryAfter)
				}
			case http.StatusOK:
			default:
				t.Fatalf("fraction %v: status %d", tt.fraction, status)
			}
		}
		t.Logf("fraction %v: %d of %d calls failed", tt.fraction, failed, calls)
		if failed < tt.min || failed > tt.max {
			t.Errorf("fraction %v: %d of %d calls failed, want %d..%d", tt.fraction, failed, calls, tt.min, tt.max)
		}
		// Every method got its share of faults, and faulted posts were not
		// applied.
		if tt.fraction > 0 && tt.fraction < 1 {
			for _, m := range faultMethods {
				n := 0
				for _, c := range srv.Calls(m) {
					if c.Status == http.StatusTooManyRequests {
						n++
					}
				}
				if n == 0 {
					t.Errorf("fraction %v: no faults on %s", tt.fraction, m)
				}
			}
		}
		posted := 0
		for _, c := range srv.Calls("chat.postMessage") {
			if c.Status == http.StatusOK {
				posted++
			}
		}
		if got := len(srv.Messages(slackstandin.DefaultChannelID)); got != posted {
			t.Errorf("fraction %v: %d messages stored, %d posts answered 200", tt.fraction, got, posted)
		}
	}
}

func TestFailFractionIsDeterministic(t *testing.T) {
	pattern := func(seed uint64) string {
		f := slackstandin.FailFraction(0.5, http.StatusInternalServerError, 0, seed)
		var b strings.Builder
		for range 200 {
			status, _, failed := f(slackstandin.Call{})
			switch {
			case failed && status == http.StatusInternalServerError:
				b.WriteByte('x')
			case failed:
				t.Fatalf("failed with status %d", status)
			default:
				b.WriteByte('.')
			}
		}
		return b.String()
	}
	a, b, c := pattern(1), pattern(1), pattern(2)
	if a != b {
		t.Errorf("same seed, different faults:\n%s\n%s", a, b)
	}
	if a == c {
		t.Errorf("seeds 1 and 2 fail the same calls: %s", a)
	}
}

func TestSetFaultAllPrecedenceAndClearing(t *testing.T) {
	srv := slackstandin.NewTestServer(t, slackstandin.Options{})
	always := func(status int) slackstandin.FaultFunc {
		return func(slackstandin.Call) (int, time.Duration, bool) { return status, 0, true }
	}
	expect := func(when string, want map[string]int) {
		t.Helper()
		for m, status := range want {
			if got, _ := postStatus(t, srv, m); got != status {
				t.Errorf("%s: %s answered %d, want %d", when, m, got, status)
			}
		}
	}

	srv.SetFaultAll(always(http.StatusInternalServerError))
	srv.SetFault("chat.postMessage", always(http.StatusTooManyRequests))
	srv.SetFault("conversations.info", slackstandin.FailN(0, http.StatusTooManyRequests, 0)) // lets all through
	expect("method faults over an all fault", map[string]int{
		"auth.test": 500, "chat.postMessage": 429, "conversations.info": 200, "users.info": 500,
	})

	// Response URLs are Slack's other service: the all fault leaves them
	// alone (an unknown one answers 404 expired_url), their own fault not.
	respURL := srv.URL() + "/_standin/response/nope"
	if got, _ := postTo(t, respURL, "", "application/json", `{"text":"hi"}`); got != http.StatusNotFound {
		t.Errorf("response_url under an all fault answered %d, want 404", got)
	}
	srv.SetFault(slackstandin.MethodResponseURL, always(http.StatusServiceUnavailable))
	if got, _ := postTo(t, respURL, "", "application/json", `{"text":"hi"}`); got != http.StatusServiceUnavailable {
		t.Errorf("response_url with its own fault answered %d, want 503", got)
	}
	srv.SetFault(slackstandin.MethodResponseURL, nil)

	srv.SetFault("chat.postMessage", nil)
	expect("method fault removed", map[string]int{"chat.postMessage": 500})

	srv.SetFaultAll(nil)
	expect("all fault removed", map[string]int{"auth.test": 200, "chat.postMessage": 200, "conversations.info": 200})
	// Faulted calls are recorded like the others; CallCount counts them all.
	if n, all := srv.CallCount(), len(srv.Calls("")); n != all || n == 0 {
		t.Errorf("CallCount = %d, recorded calls %d", n, all)
	}

	srv.SetFaultAll(always(http.StatusBadGateway))
	srv.SetFault("auth.test", always(http.StatusTooManyRequests))
	srv.ClearFaults()
	expect("after ClearFaults", map[string]int{"auth.test": 200, "chat.postMessage": 200, "users.info": 200})
}
