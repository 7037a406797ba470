package slackstandin

import (
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"strconv"
	"time"
)

// The web page: a local Slack to play in. Without a Slack workspace this
// page is CoffeeBuddy's user interface (make run, make demo).
//
//	GET  /                      the page (web/index.html, app.js, app.css)
//	GET  /_standin/web/<file>   its assets
//	GET  /_standin/ui           one person's screen as JSON + HTML fragments (webui.go)
//	GET  /_standin/events       server-sent events: "change" with the state's version
//	POST /_standin/users        add a person; /_standin/channels add a channel
//	POST /_standin/play/click   click a button in a message as a user (webplay.go)
//	POST /_standin/play/submit  submit a modal as a user
//	POST /_standin/play/close   close a modal as a user
//
// Commands go through the existing POST /_standin/command. Everything the
// page sends reaches the app the way Slack sends it: built and signed by
// RunCommand and SendInteraction.

//go:embed web
var webFS embed.FS

// webTemplates draws the page's fragments; html/template escapes all text.
var webTemplates = template.Must(template.ParseFS(webFS, "web/*.tmpl"))

func (s *Server) webRoutes(mux *http.ServeMux) {
	assets, _ := fs.Sub(webFS, "web")
	mux.Handle("GET /_standin/web/", http.StripPrefix("/_standin/web/", noCache(http.FileServerFS(assets))))
	mux.HandleFunc("GET /{$}", s.serveIndex)
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/svg+xml")
		w.Header().Set("Cache-Control", "max-age=86400")
		_, _ = w.Write([]byte(`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><text y="14" font-size="14">☕</text></svg>`))
	})
	mux.HandleFunc("GET /_standin/ui", s.serveUI)
	mux.HandleFunc("GET /_standin/events", s.serveEvents)
	mux.HandleFunc("POST /_standin/users", s.serveAddUser)
	mux.HandleFunc("POST /_standin/channels", s.serveAddChannel)
	mux.HandleFunc("POST /_standin/play/click", s.servePlayClick)
	mux.HandleFunc("POST /_standin/play/submit", s.servePlaySubmit)
	mux.HandleFunc("POST /_standin/play/close", s.servePlayClose)
}

// noCache: the page is a dev tool whose files change with the code.
func noCache(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		h.ServeHTTP(w, r)
	})
}

// securityHeaders keep the page to itself: no script or style from
// anywhere else, none inline, nothing framed; a message that slipped an
// element past the escaping still could not run code.
func securityHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
		"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
}

func (s *Server) serveIndex(w http.ResponseWriter, _ *http.Request) {
	page, err := webFS.ReadFile("web/index.html")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	securityHeaders(w)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(page)
}

func (s *Server) serveUI(w http.ResponseWriter, r *http.Request) {
	st, err := s.ui(r.URL.Query().Get("as"), r.URL.Query().Get("channel"))
	if err != nil {
		s.log.Error("drawing the page", "err", err)
		http.Error(w, "drawing the page failed: "+err.Error(), http.StatusInternalServerError)
		return
	}
	out, err := json.Marshal(st)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	securityHeaders(w)
	writeJSON(w, http.StatusOK, out)
}

// eventsPing keeps an idle stream from being cut by a proxy and lets the
// page notice a stand-in that went away.
const eventsPing = 15 * time.Second

// serveEvents streams "change" events carrying the state's version each
// time it changes (notifyLocked). A burst of changes while one is being
// written coalesces into one event with the latest version; the page asks
// for the screen again on each.
func (s *Server) serveEvents(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	quit := s.quitting()
	ping := time.NewTicker(eventsPing)
	defer ping.Stop()
	var sent uint64
	first := true
	for {
		s.mu.Lock()
		v, changed := s.version, s.changed
		s.mu.Unlock()
		if first || v != sent {
			if _, err := fmt.Fprintf(w, "retry: 1000\nevent: change\ndata: %s\n\n", strconv.FormatUint(v, 10)); err != nil {
				return
			}
			fl.Flush()
			sent, first = v, false
		}
		select {
		case <-changed:
		case <-ping.C:
			if _, err := fmt.Fprint(w, ": ping\n\n"); err != nil {
				return
			}
			fl.Flush()
		case <-r.Context().Done():
			return
		case <-quit:
			return
		}
	}
}

func (s *Server) serveAddUser(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	}
	if !decodeBody(w, r, &req) {
		return
	}
	u, err := s.AddUser(req.ID, req.Name)
	if err != nil {
		writeSimError(w, fmt.Errorf("%w: %v", ErrBadRequest, err))
		return
	}
	s.log.Info("user added on the page", "user", u.ID)
	out, _ := json.Marshal(u)
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) serveAddChannel(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Name string `json:"name"`
	}
	if !decodeBody(w, r, &req) {
		return
	}
	id, err := s.AddChannel(req.Name)
	if err != nil {
		writeSimError(w, fmt.Errorf("%w: %v", ErrBadRequest, err))
		return
	}
	s.mu.Lock()
	name := s.channelName(id)
	s.mu.Unlock()
	out, _ := json.Marshal(map[string]string{"id": id, "name": name})
	writeJSON(w, http.StatusOK, out)
}

// decodeBody reads a JSON request body into v, answering 400 when it
// cannot.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	if err := dec.Decode(v); err != nil {
		writeSimError(w, fmt.Errorf("%w: %v", ErrBadRequest, err))
		return false
	}
	return true
}
