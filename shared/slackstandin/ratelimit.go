package slackstandin

import (
	"math"
	"net/http"
	"sync"
	"time"
)

// RateLimits is an opt-in, simplified model of Slack's Web API rate limits
// (https://api.slack.com/apis/rate-limits) for benchmarks: chat.postMessage
// is limited per channel ("1 message per second per channel", Slack's
// special tier), and every other Web API method shares one per-minute
// budget (Slack's tiers are per method and per workspace; one shared
// budget is the stricter simplification). Both are sliding windows: a call
// is accepted when fewer than the limit were accepted within the window
// before it. Rejected calls do not use up the budget.
type RateLimits struct {
	// PostMessagePerChannel is how many chat.postMessage calls one channel
	// accepts per second (0 = unlimited).
	PostMessagePerChannel int
	// OtherPerMinute is how many calls of all other methods together are
	// accepted per minute (0 = unlimited).
	OtherPerMinute int
}

// SlackRateLimits is the model of issue 4 item 8: one chat.postMessage per
// second per channel, 50 other requests per minute.
var SlackRateLimits = RateLimits{PostMessagePerChannel: 1, OtherPerMinute: 50}

// EnableRateLimits makes the Web API enforce l. A call over a limit is
// answered like an injected 429 fault (see FaultFunc): HTTP 429 with
// Retry-After in whole seconds until a slot frees (at least 1) and
// {"ok":false,"error":"ratelimited"}, not applied, and recorded with
// Call.Status 429.
//
// It works through the fault hooks: it installs a FaultFunc for every
// method in Methods(), replacing any fault set on them before, and a later
// SetFault on one of them replaces its limiter (ClearFaults removes them
// all). response_url requests are not limited. Calling it again starts
// fresh windows.
func (s *Server) EnableRateLimits(l RateLimits) {
	lim := newRateLimiter(l, time.Now)
	for _, m := range Methods() {
		s.SetFault(m, lim.fault)
	}
}

// rateLimiter holds the sliding windows: accepted call times per
// chat.postMessage channel, and for all other methods together.
type rateLimiter struct {
	limits RateLimits
	now    func() time.Time

	mu      sync.Mutex
	perChan map[string][]time.Time
	other   []time.Time
}

func newRateLimiter(l RateLimits, now func() time.Time) *rateLimiter {
	return &rateLimiter{limits: l, now: now, perChan: map[string][]time.Time{}}
}

// fault is the FaultFunc: it admits the call (recording it in its window)
// or rejects it with 429 and the wait until the window has room.
func (r *rateLimiter) fault(c Call) (int, time.Duration, bool) {
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if c.Method == "chat.postMessage" {
		ch := c.Params["channel"]
		w, wait, ok := admit(r.perChan[ch], r.limits.PostMessagePerChannel, time.Second, now)
		r.perChan[ch] = w
		if !ok {
			return http.StatusTooManyRequests, wait, true
		}
		return 0, 0, false
	}
	w, wait, ok := admit(r.other, r.limits.OtherPerMinute, time.Minute, now)
	r.other = w
	if !ok {
		return http.StatusTooManyRequests, wait, true
	}
	return 0, 0, false
}

// admit applies a sliding window of limit calls per period to the accepted
// times in w (oldest first). It returns the pruned window (with now added
// when admitted), and, when not admitted, the whole seconds until the
// oldest accepted call leaves the window, at least 1 s.
func admit(w []time.Time, limit int, period time.Duration, now time.Time) ([]time.Time, time.Duration, bool) {
	if limit <= 0 {
		return w, 0, true
	}
	i := 0
	for i < len(w) && !w[i].After(now.Add(-period)) {
		i++
	}
	w = w[i:]
	if len(w) < limit {
		return append(w, now), 0, true
	}
	free := w[len(w)-limit].Add(period).Sub(now)
	secs := math.Ceil(free.Seconds())
	return w, time.Duration(max(secs, 1)) * time.Second, false
}
