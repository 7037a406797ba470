package standin

import "net/http"

// IsCopy reports whether r is an injected duplicate rather than the
// original delivery attempt (see postCopies).
func IsCopy(r *http.Request) bool {
	_, ok := r.Context().Value(copyKey{}).(int)
	return ok
}
