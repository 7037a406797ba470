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

// ClearFaults removes every installed fault.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.faults)
}

func (s *Server) fault(method string) FaultFunc {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.faults[method]
}

// recordLocked appends c and wakes WaitForCalls. s.mu must be held.
func (s *Server) recordLocked(c Call) {
	s.calls = append(s.calls, c)
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
// messages, views, DMs, triggers, response URLs). Faults stay installed (see
// ClearFaults); timestamps keep increasing.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = nil
	s.st.reset()
}
