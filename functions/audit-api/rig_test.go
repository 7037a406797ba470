package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/coffeebuddy/coffeebuddy/shared/auditquery"
	"github.com/coffeebuddy/coffeebuddy/shared/oidcauth"
	"github.com/coffeebuddy/coffeebuddy/shared/oidcauth/oidctest"
	"github.com/coffeebuddy/coffeebuddy/shared/postgres/pgtest"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const audience = "coffeebuddy-audit"

var cursorTestKey = bytes.Repeat([]byte("c"), 32)

// rig is the API on a real database, connected as the least-privilege role
// coffeebuddy_audit of deploy/postgres/roles.sql, with tokens from a local issuer.
type rig struct {
	db     *pgtest.DB    // superuser: seeding and checks
	role   *pgxpool.Pool // the API's own connection, as the audit role
	roleID string
	issuer *oidctest.Issuer
	srv    *httptest.Server
	reg    *prometheus.Registry
	logs   *lockedWriter
}

func newRig(t testing.TB) *rig {
	t.Helper()
	r := &rig{db: pgtest.New(t), issuer: oidctest.New(t), reg: prometheus.NewRegistry(), logs: &lockedWriter{w: &bytes.Buffer{}}}
	r.role, r.roleID = auditRole(t, r.db)
	log := slog.New(slog.NewJSONHandler(r.logs, nil))
	v, err := oidcauth.New(oidcauth.Config{IssuerURL: r.issuer.URL, Audience: audience, RequiredScope: "audit:read", Algorithms: oidcauth.DefaultAlgorithms}, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	v.Start(ctx)
	for v.Ready(ctx) != nil {
		time.Sleep(5 * time.Millisecond)
	}
	cursors := auditquery.NewCursors(func() ([]byte, error) { return cursorTestKey, nil })
	r.srv = httptest.NewServer(New(v, cursors, dbStore{r.role}, log, r.reg))
	t.Cleanup(r.srv.Close)
	return r
}

// auditRole applies the install's role script (deploy/postgres/roles.sql)
// under names unique to the test (roles are server-wide) and returns a pool
// connected as its coffeebuddy_audit.
func auditRole(t testing.TB, db *pgtest.DB) (*pgxpool.Pool, string) {
	t.Helper()
	roles := pgtest.ApplyRoles(t, db, "../../deploy/postgres/roles.sql")
	pool, err := pgxpool.New(context.Background(), roles.URL(t, "coffeebuddy_audit"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close) // before ApplyRoles drops the roles
	return pool, roles.Name(t, "coffeebuddy_audit")
}

// lockedWriter lets the handler log from several goroutines into one buffer.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (l *lockedWriter) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.(*bytes.Buffer).String()
}

type seed struct {
	at                       time.Time
	typ, user, team, channel string
	run                      uuid.UUID
	details                  string
}

func (r *rig) insert(t *testing.T, rows ...seed) {
	t.Helper()
	for _, s := range rows {
		var run *uuid.UUID
		if s.run != uuid.Nil {
			run = &s.run
		}
		d := s.details
		if d == "" {
			d = "{}"
		}
		if _, err := r.db.Pool.Exec(context.Background(), `
			INSERT INTO audit_logs (occurred_at, event_type, actor_user_id, team_id, channel_id, run_id, ce_id, details)
			VALUES ($1, $2, NULLIF($3, ''), NULLIF($4, ''), NULLIF($5, ''), $6, 'ce-1', $7::jsonb)`,
			s.at, s.typ, s.user, s.team, s.channel, run, d); err != nil {
			t.Fatal(err)
		}
	}
}

// response is a finished request.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r *rig) get(t *testing.T, rawQuery string, header map[string]string) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, r.srv.URL+Path+"?"+rawQuery, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{resp.StatusCode, resp.Header, b}
}

// getAuthed sends a valid token with scope audit:read.
func (r *rig) getAuthed(t *testing.T, rawQuery string, header map[string]string) response {
	t.Helper()
	h := map[string]string{"Authorization": "Bearer " + r.issuer.Token(t, nil)}
	for k, v := range header {
		h[k] = v
	}
	return r.get(t, rawQuery, h)
}

func (resp response) page(t *testing.T) pageBody {
	t.Helper()
	if resp.status != http.StatusOK {
		t.Fatalf("status %d: %s", resp.status, resp.body)
	}
	var p pageBody
	if err := json.Unmarshal(resp.body, &p); err != nil {
		t.Fatalf("page: %v: %s", err, resp.body)
	}
	return p
}

func (resp response) problem(t *testing.T) Problem {
	t.Helper()
	if ct := resp.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type %q, want application/problem+json (status %d: %s)", ct, resp.status, resp.body)
	}
	var p Problem
	if err := json.Unmarshal(resp.body, &p); err != nil {
		t.Fatalf("problem: %v: %s", err, resp.body)
	}
	if p.Type == "" || p.Title == "" || p.Status != resp.status {
		t.Fatalf("problem lacks type/title or its status differs from the response's %d: %+v", resp.status, p)
	}
	return p
}

// accessRows returns the details of the access records, oldest first.
func (r *rig) accessRows(t *testing.T, typ string) []map[string]any {
	t.Helper()
	rows, _ := r.db.Pool.Query(context.Background(), `SELECT details FROM audit_logs WHERE event_type = $1 ORDER BY id`, typ)
	out, err := pgx.CollectRows(rows, pgx.RowTo[map[string]any])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func q(kv ...string) string {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Add(kv[i], kv[i+1])
	}
	return v.Encode()
}
