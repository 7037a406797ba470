package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/coffeebuddy/coffeebuddy/shared/audit"
	"github.com/coffeebuddy/coffeebuddy/shared/auditquery"
	"github.com/coffeebuddy/coffeebuddy/shared/oidcauth"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
)

// Path is the audit endpoint (Kong routes it here unchanged).
const Path = "/api/v1/audit"

// Authenticator verifies a request's bearer token (an *oidcauth.Verifier).
type Authenticator interface {
	Authenticate(r *http.Request) (oidcauth.Principal, error)
}

// Store reads the audit log and records reads of it.
type Store interface {
	Page(ctx context.Context, f auditquery.Filter, after *auditquery.Position, limit int) ([]auditquery.Row, bool, error)
	Stream(ctx context.Context, f auditquery.Filter, after *auditquery.Position, emit func(*auditquery.Row) error) (int64, error)
	RecordAccess(ctx context.Context, e audit.Entry) error
}

// Timeouts: a page is a few milliseconds of index reads; an access record
// is written even when the client has gone (the read happened).
const (
	pageTimeout   = 15 * time.Second
	recordTimeout = 5 * time.Second
)

// API serves GET /api/v1/audit.
type API struct {
	auth    Authenticator
	cursors *auditquery.Cursors
	store   Store
	log     *slog.Logger

	requests *prometheus.CounterVec
	rows     *prometheus.CounterVec
	refused  *prometheus.CounterVec
	pageTime prometheus.Histogram
}

// New wires the API; reg may be nil.
func New(auth Authenticator, cursors *auditquery.Cursors, store Store, log *slog.Logger, reg prometheus.Registerer) http.Handler {
	a := &API{auth: auth, cursors: cursors, store: store, log: log,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "audit_api_requests_total",
			Help: "Audit API requests by HTTP status.",
		}, []string{"status"}),
		rows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "audit_api_rows_served_total",
			Help: "Audit rows sent, by format (json pages, ndjson exports).",
		}, []string{"format"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "audit_api_auth_refusals_total",
			Help: "Requests refused by token verification, by reason.",
		}, []string{"reason"}),
		pageTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "audit_api_page_seconds",
			Help:    "Time to answer one JSON page after authentication: query, access record, encoding.",
			Buckets: []float64{.001, .0025, .005, .01, .02, .05, .1, .25, .5, 1, 2.5},
		}),
	}
	for _, s := range []string{"200", "400", "401", "403", "500", "503"} {
		a.requests.WithLabelValues(s)
	}
	for _, f := range []string{"json", "ndjson"} {
		a.rows.WithLabelValues(f)
	}
	if reg != nil {
		reg.MustRegister(a.requests, a.rows, a.refused, a.pageTime)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+Path, a.serve)
	mux.HandleFunc(Path, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", "GET, HEAD")
		status := writeProblem(w, Problem{Type: ProblemAboutBlank, Title: "Method Not Allowed", Status: http.StatusMethodNotAllowed,
			Detail: "The audit log is read with GET."})
		a.requests.WithLabelValues(strconv.Itoa(status)).Inc()
	})
	return mux
}

// call is one request's context for logs, problems and the access record.
type call struct {
	id    string
	log   *slog.Logger
	who   oidcauth.Principal
	start time.Time
}

func (a *API) serve(w http.ResponseWriter, r *http.Request) {
	c := &call{id: uuid.NewString(), start: time.Now()}
	c.log = a.log.With("request_id", c.id)
	w.Header().Set("X-Request-Id", c.id)
	status := a.handle(w, r, c)
	a.requests.WithLabelValues(strconv.Itoa(status)).Inc()
}

func (a *API) handle(w http.ResponseWriter, r *http.Request, c *call) int {
	// Authentication comes first: an unauthenticated caller learns nothing,
	// not even which parameters are wrong.
	p, err := a.auth.Authenticate(r)
	if err != nil {
		if p.Subject != "" { // a valid token, refused for its scope
			c.log = c.log.With("sub", p.Subject, "client_id", p.ClientID)
		}
		return a.refuse(w, r, c, err)
	}
	c.who = p
	c.log = c.log.With("sub", p.Subject, "client_id", p.ClientID)

	req, bad := parseRequest(r.URL.Query(), r.Header.Get("Accept"))
	if bad != nil {
		c.log.Info("audit query refused: invalid parameters", "invalid", bad)
		return writeProblem(w, Problem{Type: ProblemInvalidParams, Title: "Invalid query parameters", Status: http.StatusBadRequest,
			Detail: "One or more query parameters are missing or invalid.", Instance: "urn:uuid:" + c.id, InvalidParams: bad})
	}
	var after *auditquery.Position
	if req.cursor != "" {
		pos, err := a.cursors.Decode(req.cursor, req.filter)
		switch {
		case errors.Is(err, auditquery.ErrCursorFilters):
			return a.badCursor(w, c, "the cursor belongs to a query with other filters: repeat the filters it was issued with, or start without a cursor")
		case errors.Is(err, auditquery.ErrCursor):
			return a.badCursor(w, c, "not a cursor this API issued (altered, truncated, or issued before a key rotation or restart)")
		case err != nil:
			c.log.Error("cursor key unavailable", "err", err)
			return a.internal(w, c, http.StatusInternalServerError)
		}
		after = &pos
	}
	if req.ndjson {
		return a.export(w, r, c, req, after)
	}
	return a.page(w, r, c, req, after)
}

func (a *API) refuse(w http.ResponseWriter, r *http.Request, c *call, err error) int {
	var ae *oidcauth.Error
	if !errors.As(err, &ae) {
		c.log.Error("authentication failed", "err", err)
		return a.internal(w, c, http.StatusInternalServerError)
	}
	a.refused.WithLabelValues(ae.Reason).Inc()
	c.log.Warn("request refused", "status", ae.Status, "reason", ae.Reason, "remote", r.RemoteAddr)
	if ch := ae.Challenge(); ch != "" {
		w.Header().Set("WWW-Authenticate", ch)
	}
	typ, title := ProblemUnauthorized, "Unauthorized"
	switch ae.Status {
	case http.StatusForbidden:
		typ, title = ProblemForbidden, "Forbidden"
	case http.StatusBadRequest:
		typ, title = ProblemInvalidParams, "Malformed Authorization header"
	case http.StatusServiceUnavailable:
		typ, title = ProblemUnavailable, "Token verification unavailable"
		w.Header().Set("Retry-After", "5")
	}
	return writeProblem(w, Problem{Type: typ, Title: title, Status: ae.Status, Detail: ae.Description, Instance: "urn:uuid:" + c.id})
}

func (a *API) badCursor(w http.ResponseWriter, c *call, reason string) int {
	c.log.Info("audit query refused: bad cursor")
	return writeProblem(w, Problem{Type: ProblemInvalidParams, Title: "Invalid query parameters", Status: http.StatusBadRequest,
		Detail: "The cursor cannot be used.", Instance: "urn:uuid:" + c.id,
		InvalidParams: []InvalidParam{{Name: "cursor", Reason: reason}}})
}

func (a *API) internal(w http.ResponseWriter, c *call, status int) int {
	p := Problem{Type: ProblemInternal, Title: "Internal error", Status: status, Instance: "urn:uuid:" + c.id,
		Detail: "The audit log could not be read; quote the instance when reporting this."}
	if status == http.StatusServiceUnavailable {
		p.Type, p.Title = ProblemUnavailable, "Audit log unavailable"
		w.Header().Set("Retry-After", "5")
	}
	return writeProblem(w, p)
}

// pageBody is a JSON page (the shape appendPage writes).
type pageBody struct {
	Items      []auditquery.Row `json:"items"`
	NextCursor *string          `json:"next_cursor"`
	Limit      int              `json:"limit"`
}

// appendPage writes a pageBody with each row by Row.AppendJSON, so a page
// and an export render rows (and details) identically. next is "" on the
// last page; a cursor is base64url, safe in a JSON string as it is.
func appendPage(b []byte, rows []auditquery.Row, next string, limit int) []byte {
	b = append(b, `{"items":[`...)
	for i := range rows {
		if i > 0 {
			b = append(b, ',')
		}
		b = rows[i].AppendJSON(b)
	}
	b = append(b, `],"next_cursor":`...)
	if next == "" {
		b = append(b, "null"...)
	} else {
		b = append(append(append(b, '"'), next...), '"')
	}
	b = append(b, `,"limit":`...)
	b = strconv.AppendInt(b, int64(limit), 10)
	return append(b, "}\n"...)
}

func (a *API) page(w http.ResponseWriter, r *http.Request, c *call, req request, after *auditquery.Position) int {
	ctx, cancel := context.WithTimeout(r.Context(), pageTimeout)
	defer cancel()
	rows, more, err := a.store.Page(ctx, req.filter, after, req.limit)
	if err != nil {
		c.log.Error("audit page query failed", "err", err)
		return a.internal(w, c, http.StatusServiceUnavailable)
	}
	next, link := "", ""
	if more {
		if next, err = a.cursors.Encode(rows[len(rows)-1].Position(), req.filter); err != nil {
			c.log.Error("cursor key unavailable", "err", err)
			return a.internal(w, c, http.StatusInternalServerError)
		}
		link = fmt.Sprintf("<%s?%s>; rel=\"next\"", Path, linkQuery(r.URL.Query(), next))
	}
	body := appendPage(make([]byte, 0, 512*len(rows)+64), rows, next, req.limit)
	// The read is on record before any of it leaves: no record, no data.
	if err := a.record(r.Context(), c, audit.AuditQueried, req, after != nil, map[string]any{"rows": len(rows), "complete": true}); err != nil {
		return a.internal(w, c, http.StatusServiceUnavailable)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	if link != "" {
		h.Set("Link", link)
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
	a.rows.WithLabelValues("json").Add(float64(len(rows)))
	a.pageTime.Observe(time.Since(c.start).Seconds())
	c.log.Info("audit page served", "rows", len(rows), "more", more, "filters", filterLog(req.filter), "ms", time.Since(c.start).Milliseconds())
	return http.StatusOK
}

// export streams every row of the range as NDJSON, one JSON object a line,
// in (occurred_at, id) order, in constant memory. Once the first byte is out
// the status is 200; a failure after that aborts the connection, so the
// client sees a truncated transfer instead of a short export that looks
// whole.
func (a *API) export(w http.ResponseWriter, r *http.Request, c *call, req request, after *auditquery.Position) int {
	if err := a.record(r.Context(), c, audit.AuditExportStarted, req, after != nil, nil); err != nil {
		return a.internal(w, c, http.StatusServiceUnavailable)
	}
	h := w.Header()
	h.Set("Content-Type", NDJSON)
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	out := auditquery.NewNDJSON(w)
	_, err := a.store.Stream(r.Context(), req.filter, after, out.Write)
	if err == nil {
		err = out.Flush()
	}
	a.rows.WithLabelValues("ndjson").Add(float64(out.Sent()))
	complete := err == nil
	// Recorded whether or not the export finished: the rows that left are
	// what the record is about.
	_ = a.record(r.Context(), c, audit.AuditQueried, req, after != nil, map[string]any{"rows": out.Sent(), "complete": complete})
	if !complete {
		c.log.Warn("audit export aborted", "rows", out.Sent(), "err", err)
		panic(http.ErrAbortHandler) // no clean end of the chunked body
	}
	c.log.Info("audit export served", "rows", out.Sent(), "filters", filterLog(req.filter), "ms", time.Since(c.start).Milliseconds())
	return http.StatusOK
}

// record writes an access row: who read the trail, with which filters, and
// what came of it. It outlives the request's cancellation.
func (a *API) record(ctx context.Context, c *call, typ string, req request, cursor bool, extra map[string]any) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	format := "json"
	if req.ndjson {
		format = "ndjson"
	}
	details := map[string]any{
		"request_id": c.id,
		"sub":        c.who.Subject,
		"client_id":  c.who.ClientID,
		"filters":    filterDetails(req.filter),
		"format":     format,
		"cursor":     cursor,
	}
	if !req.ndjson {
		details["limit"] = req.limit
	}
	for k, v := range extra {
		details[k] = v
	}
	err := a.store.RecordAccess(ctx, audit.Entry{EventType: typ, ActorUserID: c.who.Subject, Details: details})
	if err != nil {
		c.log.Error("could not record access to the audit log", "event_type", typ, "err", err)
	}
	return err
}

// filterDetails is the filter as the access record stores it.
func filterDetails(f auditquery.Filter) map[string]any {
	d := map[string]any{
		"start_date": f.Start.Format(time.RFC3339Nano),
		"end_date":   f.End.Format(time.RFC3339Nano),
	}
	if len(f.EventTypes) > 0 {
		d["event_type"] = f.EventTypes
	}
	for k, v := range map[string]string{"user_id": f.UserID, "channel_id": f.ChannelID, "team_id": f.TeamID} {
		if v != "" {
			d[k] = v
		}
	}
	if f.RunID != uuid.Nil {
		d["run_id"] = f.RunID.String()
	}
	return d
}

func filterLog(f auditquery.Filter) slog.Value {
	var attrs []slog.Attr
	for k, v := range filterDetails(f) {
		attrs = append(attrs, slog.Any(k, v))
	}
	return slog.GroupValue(attrs...)
}

// linkQuery is the next page's query: the same parameters, the new cursor.
func linkQuery(q url.Values, cursor string) string {
	q.Set("cursor", cursor)
	return q.Encode()
}
