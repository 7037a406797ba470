package slackstandin

import (
	"encoding/json"
	"net/http"
)

// stateSnapshot is the JSON answer of GET /_standin/state, for scripts.
type stateSnapshot struct {
	APIURL     string               `json:"api_url"`
	Channels   map[string][]Message `json:"channels"`
	Ephemerals []Message            `json:"ephemerals"`
	Views      []View               `json:"views"`
}

func (s *Server) serveState(w http.ResponseWriter, r *http.Request) {
	snap := stateSnapshot{APIURL: s.APIURL(), Channels: map[string][]Message{}}
	for _, id := range s.Channels() {
		if ch := r.URL.Query().Get("channel"); ch == "" || ch == id {
			snap.Channels[id] = s.Messages(id)
		}
	}
	snap.Ephemerals = s.Ephemerals(r.URL.Query().Get("user"))
	snap.Views = s.Views(r.URL.Query().Get("user"))
	out, err := json.MarshalIndent(snap, "", "  ")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	writeJSON(w, http.StatusOK, out)
}
