package standin

import "net/http"

// IsCopy reports whether r is an injected duplicate rather than the
// original delivery attempt (see postCopies).
func IsCopy(r *http.Request) bool {
	_, ok := r.Context().Value(copyKey{}).(int)
	return ok
}

// SetSettled makes s call f once an unordered consumer is done with a
// delivered record and has committed what that allows. Call before Run.
func SetSettled(s *StandIn, f func(topic string, partition int32, offset int64)) { s.settled = f }
