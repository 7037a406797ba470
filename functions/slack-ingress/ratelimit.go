package main

import (
	"sync"
	"time"
)

// DefaultUserLimit is how many requests one Slack user may make per
// UserLimitWindow. Kong cannot enforce it: the user is inside the body
// Slack signs, which only the ingress reads (docs/adr/0011-kong.md).
const (
	DefaultUserLimit = 100
	UserLimitWindow  = time.Minute
)

// userKey is one Slack user: user ids are unique per workspace only.
type userKey struct{ team, user string }

// userLimiter allows each user at most limit requests in any window (a
// sliding log of accepted requests). It lives in one replica's memory, so
// with N replicas a user spread over all of them could make N×limit; see
// docs/adr/0011-kong.md for why that is accepted.
type userLimiter struct {
	limit  int
	window time.Duration

	mu        sync.Mutex
	users     map[userKey]*userLog
	lastSweep time.Time
}

type userLog struct {
	// times are the accepted requests still inside the window, oldest
	// first; never more than limit.
	times []time.Time
	// refusing is set by the first refusal and cleared by the next accepted
	// request, so a user is told once per spell, not once per click.
	refusing bool
}

// verdict is the limiter's answer for one request.
type verdict struct {
	ok         bool
	retryAfter time.Duration // when refused: until the oldest request leaves the window
	first      bool          // the first refusal of this spell
}

func newUserLimiter(limit int, window time.Duration) *userLimiter {
	return &userLimiter{limit: limit, window: window, users: map[userKey]*userLog{}}
}

// allow counts a request by k at now, unless it is over the limit. Refused
// requests are not counted: hammering does not push recovery further away.
func (l *userLimiter) allow(k userKey, now time.Time) verdict {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweep(now)
	u := l.users[k]
	if u == nil {
		u = &userLog{}
		l.users[k] = u
	}
	// Drop what left the window; a clock step backwards keeps everything.
	cut := 0
	for cut < len(u.times) && !now.Before(u.times[cut].Add(l.window)) {
		cut++
	}
	u.times = u.times[cut:]
	if len(u.times) >= l.limit {
		v := verdict{retryAfter: u.times[0].Add(l.window).Sub(now), first: !u.refusing}
		u.refusing = true
		return v
	}
	u.times = append(u.times, now)
	u.refusing = false
	return verdict{ok: true}
}

// sweep forgets users with nothing left in the window, at most once per
// window, so memory follows the users active in the last minute or two.
func (l *userLimiter) sweep(now time.Time) {
	if now.Sub(l.lastSweep) < l.window {
		return
	}
	l.lastSweep = now
	for k, u := range l.users {
		if n := len(u.times); n == 0 || !now.Before(u.times[n-1].Add(l.window)) {
			delete(l.users, k)
		}
	}
}

// tracked is the number of users in memory (tests).
func (l *userLimiter) tracked() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.users)
}
