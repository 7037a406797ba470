package main

import (
	"encoding/json"
	"net/http"
)

// Problem is an RFC 9457 problem details body (application/problem+json).
type Problem struct {
	Type          string         `json:"type"`
	Title         string         `json:"title"`
	Status        int            `json:"status"`
	Detail        string         `json:"detail,omitempty"`
	Instance      string         `json:"instance,omitempty"` // urn:uuid:<request id>, as in X-Request-Id and the logs
	InvalidParams []InvalidParam `json:"invalid-params,omitempty"`
}

// Problem types. Tag URIs (RFC 4151): stable identifiers that are not
// meant to be dereferenced; docs/api/audit.openapi.yaml describes each.
const (
	ProblemInvalidParams = "tag:coffeebuddy,2026:problem:invalid-params"
	ProblemUnauthorized  = "tag:coffeebuddy,2026:problem:unauthorized"
	ProblemForbidden     = "tag:coffeebuddy,2026:problem:forbidden"
	ProblemUnavailable   = "tag:coffeebuddy,2026:problem:unavailable"
	ProblemInternal      = "tag:coffeebuddy,2026:problem:internal"
	// ProblemAboutBlank: nothing to add to the HTTP status (RFC 9457 §4.2.1).
	ProblemAboutBlank = "about:blank"
)

func writeProblem(w http.ResponseWriter, p Problem) int {
	b, err := json.Marshal(p)
	if err != nil {
		http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
		return http.StatusInternalServerError
	}
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(p.Status)
	_, _ = w.Write(append(b, '\n'))
	return p.Status
}
