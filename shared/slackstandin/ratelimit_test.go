package slackstandin

import (
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack"
)

// fakeClock is a settable clock for the limiter, so the tests assert the
// windows without depending on how fast the machine is.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// limitedServer is a test server enforcing l on clock.
func limitedServer(t *testing.T, l RateLimits) (*Server, *slack.Client, *fakeClock) {
	t.Helper()
	srv := NewTestServer(t, Options{})
	clock := &fakeClock{t: time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)}
	lim := newRateLimiter(l, clock.now)
	for _, m := range Methods() {
		srv.SetFault(m, lim.fault)
	}
	return srv, slack.New(srv.BotToken(), slack.OptionAPIURL(srv.APIURL())), clock
}

func post(api *slack.Client, t *testing.T, channel, text string) error {
	_, _, err := api.PostMessageContext(t.Context(), channel, slack.MsgOptionText(text, false))
	return err
}

func wantRateLimited(t *testing.T, err error, atLeast time.Duration) {
	t.Helper()
	var rl *slack.RateLimitedError
	if !errors.As(err, &rl) {
		t.Fatalf("err = %v, want a 429 (slack.RateLimitedError)", err)
	}
	if rl.RetryAfter < atLeast {
		t.Fatalf("Retry-After %s, want at least %s", rl.RetryAfter, atLeast)
	}
}

func TestRateLimitPostMessagePerChannel(t *testing.T) {
	srv, api, clock := limitedServer(t, SlackRateLimits)

	// Three posts to one channel within a second: one accepted.
	if err := post(api, t, "C1", "one"); err != nil {
		t.Fatal(err)
	}
	clock.advance(300 * time.Millisecond)
	wantRateLimited(t, post(api, t, "C1", "two"), time.Second)
	clock.advance(600 * time.Millisecond)
	wantRateLimited(t, post(api, t, "C1", "three"), time.Second)

	if got := srv.Messages("C1"); len(got) != 1 || got[0].Text != "one" {
		t.Fatalf("C1 holds %+v, want only the accepted post", got)
	}
	calls := srv.Calls("chat.postMessage")
	if len(calls) != 3 {
		t.Fatalf("%d calls recorded, want 3", len(calls))
	}
	for i, c := range calls[1:] {
		if c.Status != http.StatusTooManyRequests || !strings.Contains(string(c.Response), `"error":"ratelimited"`) {
			t.Errorf("call %d recorded as %d %s, want 429 ratelimited", i+2, c.Status, c.Response)
		}
	}

	// Another channel is independent.
	if err := post(api, t, "C2", "elsewhere"); err != nil {
		t.Fatalf("C2 limited by C1's posts: %v", err)
	}
	// A second after the accepted post, C1 has room again.
	clock.advance(100 * time.Millisecond)
	if err := post(api, t, "C1", "four"); err != nil {
		t.Fatalf("C1 a second later: %v", err)
	}
	// Posts do not use up the other methods' budget.
	if _, err := api.AuthTestContext(t.Context()); err != nil {
		t.Fatal(err)
	}
}

func TestRateLimitOtherMethodsShareMinute(t *testing.T) {
	srv, api, clock := limitedServer(t, SlackRateLimits)
	ctx := t.Context()
	for i := range 50 {
		var err error
		switch i % 3 {
		case 0:
			_, err = api.AuthTestContext(ctx)
		case 1:
			_, err = api.GetUserInfoContext(ctx, "U1")
		case 2:
			_, _, _, err = api.OpenConversationContext(ctx, &slack.OpenConversationParameters{Users: []string{"U1"}})
		}
		if err != nil {
			t.Fatalf("call %d: %v", i+1, err)
		}
		clock.advance(time.Second)
	}
	// 50 s in: the 51st call waits until the first leaves the window (10 s).
	_, err := api.PostEphemeralContext(ctx, "C1", "U1", slack.MsgOptionText("hi", false))
	wantRateLimited(t, err, 10*time.Second)
	if got := srv.Ephemerals("U1"); len(got) != 0 {
		t.Fatalf("rate-limited ephemeral was applied: %+v", got)
	}
	// chat.postMessage has its own limit.
	if err := post(api, t, "C1", "still fine"); err != nil {
		t.Fatal(err)
	}
	clock.advance(10 * time.Second)
	if _, err := api.AuthTestContext(ctx); err != nil {
		t.Fatalf("after the window moved: %v", err)
	}
	// Rejected calls do not use up the budget: exactly one slot freed.
	wantRateLimited(t, func() error { _, err := api.AuthTestContext(ctx); return err }(), time.Second)
}

func TestAdmitRetryAfterWholeSeconds(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	w, _, ok := admit(nil, 1, time.Second, t0)
	if !ok {
		t.Fatal("empty window refused")
	}
	_, wait, ok := admit(w, 1, time.Second, t0.Add(900*time.Millisecond))
	if ok || wait != time.Second {
		t.Fatalf("0.1 s before a slot frees: ok=%v wait=%s, want refused with 1s (at least 1)", ok, wait)
	}
	w = nil
	for i := range 3 {
		w, _, _ = admit(w, 3, time.Minute, t0.Add(time.Duration(i)*time.Second))
	}
	_, wait, ok = admit(w, 3, time.Minute, t0.Add(2500*time.Millisecond))
	if ok || wait != 58*time.Second {
		t.Fatalf("ok=%v wait=%s, want refused with 58s (57.5 s rounded up)", ok, wait)
	}
	if _, _, ok := admit(w, 0, time.Minute, t0); !ok {
		t.Fatal("limit 0 must mean unlimited")
	}
}

// TestEnableRateLimits checks the public switch on the real clock with a
// budget small enough that timing cannot matter.
func TestEnableRateLimits(t *testing.T) {
	srv := NewTestServer(t, Options{})
	srv.EnableRateLimits(RateLimits{PostMessagePerChannel: 1, OtherPerMinute: 1})
	api := slack.New(srv.BotToken(), slack.OptionAPIURL(srv.APIURL()))
	if _, err := api.AuthTestContext(t.Context()); err != nil {
		t.Fatal(err)
	}
	_, _, _, err := api.UpdateMessageContext(t.Context(), "C1", "1.2", slack.MsgOptionText("x", false))
	wantRateLimited(t, err, time.Second)
	srv.ClearFaults()
	if _, err := api.AuthTestContext(t.Context()); err != nil {
		t.Fatalf("after ClearFaults: %v", err)
	}
}
