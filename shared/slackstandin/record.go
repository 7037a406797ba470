package slackstandin

import (
	"context"
	"maps"
	"slices"
	"sync/atomic"
	"time"
)

// Call is one recorded request to the stand-in's Web API (Method is the API
// method, e.g. "chat.postMessage") or to a response_url (Method is
// MethodResponseURL).
type Call struct {
	Method string
	// Params holds the form values (first value per key, query string
	// included) or, for a JSON body, its top-level fields rendered as
	// strings: strings as-is, everything else as compact JSON text.
	Params map[string]string
	// Body is the raw request body.
	Body []byte
	At   time.Time
	// Status is the HTTP status answered (200 for Slack errors such as
	// invalid_auth, which Slack reports in the body).
	Status int
	// Response is the body answered.
	Response []byte
}

// MethodResponseURL is the Call.Method of requests to a response_url.
const MethodResponseURL = "response_url"

// FaultFunc decides whether a call fails. When ok is true the server answers
// status without applying the call: 429 comes with a Retry-After header in
// whole seconds (rounded up) and {"ok":false,"error":"ratelimited"}; other
// statuses with {"ok":false,"error":"internal_error"} for 5xx or
// "fault_injected" otherwise (and Retry-After when retryAfter > 0).
// Call.Status is zero when the func sees it.
type FaultFunc func(call Call) (status int, retryAfter time.Duration, ok bool)

// FailN returns a FaultFunc that fails the first n calls it sees with status
// (and retryAfter) and lets the rest through. It is safe for concurrent use.
func FailN(n int, status int, retryAfter time.Duration) FaultFunc {
	var seen atomic.Int64
	return func(Call) (int, time.Duration, bool) {
		if seen.Add(1) > int64(n) {
			return 0, 0, false
		}
		return status, retryAfter, true
	}
}

// FailFraction returns a FaultFunc that fails about fraction of the calls it
// sees with status (and retryAfter) and lets the rest through. Which calls
// fail is decided by the call's position in the sequence seen and by seed
// alone, so a run is reproducible; fraction ≤ 0 fails none, ≥ 1 fails all.
// It is safe for concurrent use.
func FailFraction(fraction float64, status int, retryAfter time.Duration, seed uint64) FaultFunc {
	var seen atomic.Uint64
	return func(Call) (int, time.Duration, bool) {
		n := seen.Add(1)
		// The n-th output of SplitMix64 seeded with seed, as 53 random bits
		// in [0, 1): no shared generator state to lock.
		if float64(mix64(seed+n*0x9e3779b97f4a7c15)>>11)/(1<<53) >= fraction {
			return 0, 0, false
		}
		return status, retryAfter, true
	}
}

// mix64 is SplitMix64's output function (Vigna).
func mix64(x uint64) uint64 {
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// SetFault installs f for method (an API method name or MethodResponseURL),
// replacing any previous one; a nil f removes it.
func (s *Server) SetFault(method string, f FaultFunc) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f == nil {
		delete(s.faults, method)
		return
	}
	s.faults[method] = f
}

// faultAll keys the all-methods fault in Server.faults; no Slack method
// name starts with "/", so it cannot shadow a method's own fault.
const faultAll = "/all"

// SetFaultAll installs f for every Web API method without a fault of its
// own (SetFault wins), replacing any previous one; a nil f removes it.
// Response URLs are not affected: Slack serves them apart from the Web API.
func (s *Server) SetFaultAll(f FaultFunc) { s.SetFault(faultAll, f) }

// ClearFaults removes every installed fault, SetFaultAll's included.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.faults)
}

// fault returns the fault for method: its own, else (for Web API methods)
// the all-methods one.
func (s *Server) fault(method string) FaultFunc {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f, ok := s.faults[method]; ok || method == MethodResponseURL {
		return f
	}
	return s.faults[faultAll]
}

// recordLocked appends c and wakes WaitForCalls and the web page. s.mu
// must be held.
func (s *Server) recordLocked(c Call) {
	s.calls = append(s.calls, c)
	s.notifyLocked()
}

// notifyLocked tells waiters that something changed: WaitForCalls re-checks
// its calls, the web page's event streams send the new version. Changes
// that record no call (a view's field errors, a command's own answer, a
// user added on the page) call it directly. s.mu must be held.
func (s *Server) notifyLocked() {
	s.version++
	close(s.changed)
	s.changed = make(chan struct{})
}

// Calls returns the recorded calls of method in arrival order, or every call
// when method is "".
func (s *Server) Calls(method string) []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.callsLocked(method)
}

// CallCount is how many calls have been recorded, without copying them
// (pollers waiting for the API to fall quiet).
func (s *Server) CallCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.calls)
}

func (s *Server) callsLocked(method string) []Call {
	var out []Call
	for _, c := range s.calls {
		if method == "" || c.Method == method {
			c.Params = maps.Clone(c.Params)
			c.Body = slices.Clone(c.Body)
			c.Response = slices.Clone(c.Response)
			out = append(out, c)
		}
	}
	return out
}

// WaitForCalls blocks until at least n calls of method (any method when "")
// have been recorded, and returns them all. The state change a call causes
// is applied before the call is recorded. When ctx ends first it returns the
// calls so far and ctx's error.
func (s *Server) WaitForCalls(ctx context.Context, method string, n int) ([]Call, error) {
	for {
		s.mu.Lock()
		calls := s.callsLocked(method)
		changed := s.changed
		s.mu.Unlock()
		if len(calls) >= n {
			return calls, nil
		}
		select {
		case <-ctx.Done():
			return calls, ctx.Err()
		case <-changed:
		}
	}
}

// Reset forgets every recorded call and all state (messages, ephemeral
// messages, views, DMs, triggers, response URLs); the conversation registry
// goes back to Options.Conversations. Faults stay installed (see
// ClearFaults); timestamps keep increasing.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = nil
	s.st.reset(s.opts.Conversations)
	s.notifyLocked()
}
