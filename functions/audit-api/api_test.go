package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coffeebuddy/coffeebuddy/shared/audit"
	"github.com/coffeebuddy/coffeebuddy/shared/auditquery"
	"github.com/coffeebuddy/coffeebuddy/shared/oidcauth/oidctest"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

var day = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

const marchQuery = "start_date=2026-03-01&end_date=2026-04-01"

// TestAuthRefusals: every token the API must not accept, over HTTP, with
// RFC 6750's status and WWW-Authenticate; authentication is checked before
// anything else, and a refused request reads and records nothing.
func TestAuthRefusals(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	r.insert(t, seed{at: day, typ: audit.OrderPlaced, user: "U1"})
	is := r.issuer
	invalid := `Bearer realm="coffeebuddy", error="invalid_token", error_description=`
	tests := []struct {
		name      string
		auth      string
		query     string
		status    int
		challenge string // prefix of WWW-Authenticate
		exact     bool
	}{
		{"missing token", "", marchQuery, 401, `Bearer realm="coffeebuddy"`, true},
		{"missing token with bad parameters", "", "nonsense=1", 401, `Bearer realm="coffeebuddy"`, true},
		{"other scheme", "Basic dXNlcjpwYXNz", marchQuery, 401, `Bearer realm="coffeebuddy"`, true},
		{"expired", "Bearer " + is.Token(t, oidctest.Claims{"exp": time.Now().Add(-time.Second).Unix()}), marchQuery, 401, invalid, false},
		{"not yet valid", "Bearer " + is.Token(t, oidctest.Claims{"nbf": time.Now().Add(time.Hour).Unix()}), marchQuery, 401, invalid, false},
		{"wrong audience", "Bearer " + is.Token(t, oidctest.Claims{"aud": []string{"slack-ingress"}}), marchQuery, 401, invalid, false},
		{"wrong issuer", "Bearer " + is.Token(t, oidctest.Claims{"iss": "https://other-issuer.example"}), marchQuery, 401, invalid, false},
		{"alg none", "Bearer " + is.UnsignedToken(t, nil), marchQuery, 401, invalid, false},
		{"HS256 forged with the public key", "Bearer " + is.HMACToken(t, nil), marchQuery, 401, invalid, false},
		{"bad signature", "Bearer " + is.Tamper(t, is.Token(t, nil), oidctest.Claims{"scp": []string{"audit:read", "admin"}}), marchQuery, 401, invalid, false},
		{"unknown key", "Bearer " + is.ForeignToken(t, "rogue-kid", nil), marchQuery, 401, invalid, false},
		{"garbage token with bad parameters", "Bearer abc.def.ghi", "nonsense=1", 401, invalid, false},
		{"malformed header", "Bearer", marchQuery, 400, `Bearer realm="coffeebuddy", error="invalid_request"`, false},
		{"no audit:read scope", "Bearer " + is.Token(t, oidctest.Claims{"scp": []string{"openid"}}), marchQuery, 403,
			`Bearer realm="coffeebuddy", error="insufficient_scope", error_description="the token does not grant scope audit:read", scope="audit:read"`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := map[string]string{}
			if tt.auth != "" {
				h["Authorization"] = tt.auth
			}
			resp := r.get(t, tt.query, h)
			if resp.status != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.status, tt.status, resp.body)
			}
			ch := resp.header.Get("WWW-Authenticate")
			if (tt.exact && ch != tt.challenge) || !strings.HasPrefix(ch, tt.challenge) {
				t.Fatalf("WWW-Authenticate %q, want %q", ch, tt.challenge)
			}
			p := resp.problem(t)
			if len(p.InvalidParams) > 0 || strings.Contains(string(resp.body), "U1") {
				t.Fatalf("a refused request learned something: %s", resp.body)
			}
		})
	}
	if n := len(r.accessRows(t, audit.AuditQueried)); n != 0 {
		t.Errorf("%d access records for refused requests", n)
	}
	if got := metric(t, r, "audit_api_requests_total", "status", "401"); got != 12 {
		t.Errorf("audit_api_requests_total{status=401} = %v, want 12", got)
	}
	if got := metric(t, r, "audit_api_auth_refusals_total", "reason", "missing"); got != 3 {
		t.Errorf("audit_api_auth_refusals_total{reason=missing} = %v, want 3", got)
	}
	// Tokens never reach the logs.
	for _, tt := range tests {
		if tok := strings.TrimPrefix(tt.auth, "Bearer "); len(tok) > 30 && strings.Contains(r.logs.String(), tok) {
			t.Fatalf("%s: the token was logged", tt.name)
		}
	}
}

// metric reads a counter of the rig's registry by one label.
func metric(t *testing.T, r *rig, name, label, value string) float64 {
	t.Helper()
	mfs, err := r.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return -1
}

// TestInvalidParameters: every malformed query is a 400 problem+json naming
// the parameter in invalid-params.
func TestInvalidParameters(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	f := auditquery.Filter{Start: day, End: day.AddDate(0, 1, 0)}.Normalize()
	cur, err := auditquery.NewCursors(func() ([]byte, error) { return cursorTestKey, nil }).Encode(auditquery.Position{OccurredAt: day, ID: 1}, f)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.RawURLEncoding.DecodeString(cur)
	raw[10] ^= 0x01
	tampered := base64.RawURLEncoding.EncodeToString(raw)
	foreignKey, _ := auditquery.NewCursors(func() ([]byte, error) { return bytes.Repeat([]byte("x"), 32), nil }).Encode(auditquery.Position{OccurredAt: day, ID: 1}, f)
	tests := []struct {
		name  string
		query string
		param string // the invalid-params entry expected
		want  string // in its reason
	}{
		{"no parameters", "", "start_date", "required"},
		{"no end", "start_date=2026-03-01", "end_date", "required"},
		{"bad date", "start_date=2026-02-30&end_date=2026-04-01", "start_date", "RFC 3339"},
		{"bad time", "start_date=2026-03-01T25:00:00Z&end_date=2026-04-01", "start_date", "RFC 3339"},
		{"time without zone", "start_date=2026-03-01T10:00:00&end_date=2026-04-01", "start_date", "RFC 3339"},
		{"unencoded + offset", "start_date=2026-03-01T10:00:00+01:00&end_date=2026-04-01", "start_date", "%2B"},
		{"reversed range", "start_date=2026-04-01&end_date=2026-03-01", "end_date", "after start_date"},
		{"empty range", "start_date=2026-03-01&end_date=2026-03-01", "end_date", "after start_date"},
		{"range over 366 days", "start_date=2025-01-01&end_date=2026-01-03", "end_date", "366 days"},
		{"unknown event type", marchQuery + "&event_type=order_placed&event_type=coffee_spilled", "event_type", "not an audit event type"},
		{"event type in another case", marchQuery + "&event_type=ORDER_PLACED", "event_type", "not an audit event type"},
		{"limit 0", marchQuery + "&limit=0", "limit", "1 to 1000"},
		{"limit 1001", marchQuery + "&limit=1001", "limit", "1 to 1000"},
		{"limit negative", marchQuery + "&limit=-5", "limit", "1 to 1000"},
		{"limit not a number", marchQuery + "&limit=ten", "limit", "1 to 1000"},
		{"limit with an export", marchQuery + "&limit=10&format=ndjson", "limit", "export"},
		{"unknown parameter", marchQuery + "&sort=desc", "sort", "unknown query parameter"},
		{"token in the query string", marchQuery + "&access_token=abc", "access_token", "unknown query parameter"},
		{"offset pagination", marchQuery + "&offset=100", "offset", "unknown query parameter"},
		{"user_id twice", marchQuery + "&user_id=U1&user_id=U2", "user_id", "given 2 times"},
		{"empty user_id", marchQuery + "&user_id=", "user_id", "empty"},
		{"user_id with a control character", marchQuery + "&user_id=U1%0AINFO+forged+log+line", "user_id", "control"},
		{"user_id too long", marchQuery + "&user_id=" + strings.Repeat("U", 256), "user_id", "255"},
		{"run_id not a uuid", marchQuery + "&run_id=42", "run_id", "not a UUID"},
		{"run_id with injection", marchQuery + "&run_id=" + url.QueryEscape("00000000-0000-0000-0000-000000000000' OR '1'='1"), "run_id", "not a UUID"},
		{"run_id in braces", marchQuery + "&run_id=%7B0b5c7c4e-8f5a-4c55-9a3f-5d2d8a5f3b10%7D", "run_id", "not a UUID"},
		{"run_id truncated", marchQuery + "&run_id=0b5c7c4e-8f5a-4c55-9a3f-5d2d8a5f3b1", "run_id", "not a UUID"},
		{"unknown format", marchQuery + "&format=csv", "format", "json or ndjson"},
		{"tampered cursor", marchQuery + "&cursor=" + tampered, "cursor", "not a cursor this API issued"},
		{"garbage cursor", marchQuery + "&cursor=abc", "cursor", "not a cursor this API issued"},
		{"cursor signed with another key", marchQuery + "&cursor=" + foreignKey, "cursor", "not a cursor this API issued"},
		{"cursor replayed with other filters", marchQuery + "&user_id=U9&cursor=" + cur, "cursor", "other filters"},
		{"cursor replayed with another range", "start_date=2026-03-01&end_date=2026-03-31&cursor=" + cur, "cursor", "other filters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := r.getAuthed(t, tt.query, nil)
			if resp.status != 400 {
				t.Fatalf("status %d, want 400: %s", resp.status, resp.body)
			}
			p := resp.problem(t)
			if p.Type != ProblemInvalidParams || !strings.HasPrefix(p.Instance, "urn:uuid:") {
				t.Fatalf("problem %+v", p)
			}
			for _, ip := range p.InvalidParams {
				if ip.Name == tt.param && strings.Contains(ip.Reason, tt.want) {
					return
				}
			}
			t.Fatalf("invalid-params %+v lack %s: …%s…", p.InvalidParams, tt.param, tt.want)
		})
	}
	// The bounds themselves are accepted.
	for _, ok := range []string{
		"start_date=2025-01-01&end_date=2026-01-02", // exactly 366 days
		marchQuery + "&limit=1", marchQuery + "&limit=1000",
		"start_date=2026-03-01T10:00:00%2B01:00&end_date=2026-03-01T10:00:00.000001Z",
		marchQuery + "&run_id=0b5c7c4e-8f5a-4c55-9a3f-5d2d8a5f3b10&event_type=run_created&event_type=run_created",
	} {
		if resp := r.getAuthed(t, ok, nil); resp.status != 200 {
			t.Errorf("%s: status %d: %s", ok, resp.status, resp.body)
		}
	}
	if n := len(r.accessRows(t, audit.AuditQueried)); n != 5 {
		t.Errorf("%d access records, want 5 (one per accepted query, none for refused ones)", n)
	}
}

var linkRE = regexp.MustCompile(`^<(/api/v1/audit\?[^>]+)>; rel="next"$`)

// TestPagesFollowLinks walks a range through the Link headers: every row
// once, in (occurred_at, id) order, each page's next_cursor equal to its
// Link, the last page without either; each page is audited.
func TestPagesFollowLinks(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	run := uuid.New()
	var seeds []seed
	for i := range 23 {
		// Pairs share a timestamp: pages end inside ties.
		seeds = append(seeds, seed{at: day.Add(time.Duration(i/2) * time.Minute), typ: audit.OrderPlaced, user: "U1", team: "T1", channel: "C1", run: run})
	}
	seeds = append(seeds, seed{at: day.AddDate(0, 2, 0), typ: audit.OrderPlaced}) // outside the range
	r.insert(t, seeds...)

	query := marchQuery + "&limit=5&user_id=U1"
	var got []int64
	pages := 0
	for query != "" {
		resp := r.getAuthed(t, query, nil)
		p := resp.page(t)
		pages++
		for _, it := range p.Items {
			got = append(got, it.ID)
		}
		link := resp.header.Get("Link")
		if p.NextCursor == nil {
			if link != "" || len(p.Items) == 0 {
				t.Fatalf("last page: Link %q, %d items", link, len(p.Items))
			}
			break
		}
		m := linkRE.FindStringSubmatch(link)
		if m == nil {
			t.Fatalf("Link %q", link)
		}
		u, _ := url.Parse(m[1])
		if u.Query().Get("cursor") != *p.NextCursor || u.Query().Get("user_id") != "U1" || u.Query().Get("limit") != "5" {
			t.Fatalf("Link %q does not carry the filters and next_cursor %q", link, *p.NextCursor)
		}
		query = u.RawQuery
	}
	if pages != 5 || len(got) != 23 || !slices.IsSorted(got) {
		t.Fatalf("%d pages, ids %v; want 5 pages of the 23 rows in order", pages, got)
	}
	acc := r.accessRows(t, audit.AuditQueried)
	if len(acc) != 5 {
		t.Fatalf("%d access records, want one per page", len(acc))
	}
	first, last := acc[0], acc[4]
	if first["rows"] != 5.0 || last["rows"] != 3.0 || first["cursor"] != false || last["cursor"] != true ||
		first["sub"] != "audit-client" || first["client_id"] != "audit-client" || first["format"] != "json" || first["limit"] != 5.0 {
		t.Errorf("access records: first %v, last %v", first, last)
	}
	if fl, _ := first["filters"].(map[string]any); fl["user_id"] != "U1" || fl["start_date"] != "2026-03-01T00:00:00Z" || fl["end_date"] != "2026-04-01T00:00:00Z" {
		t.Errorf("access record filters = %v", first["filters"])
	}
	var actor string
	if err := r.db.Pool.QueryRow(context.Background(), `SELECT actor_user_id FROM audit_logs WHERE event_type = 'audit_queried' LIMIT 1`).Scan(&actor); err != nil || actor != "audit-client" {
		t.Errorf("access record actor = %q, %v; want the token's subject", actor, err)
	}
	// The reads are themselves readable.
	p := r.getAuthed(t, q("start_date", time.Now().Add(-time.Hour).UTC().Format(time.RFC3339), "end_date", time.Now().Add(time.Hour).UTC().Format(time.RFC3339),
		"event_type", audit.AuditQueried), nil).page(t)
	if len(p.Items) != 5 {
		t.Errorf("audit_queried rows through the API: %d, want 5", len(p.Items))
	}
}

func TestRowsAsStored(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	run := uuid.New()
	r.insert(t,
		seed{at: day.Add(90 * time.Second), typ: audit.RunClosed, user: "U1", team: "T1", channel: "C1", run: run,
			details: `{"runner": "U2", "why": "0 runs in 30 days; team median 2", "candidates": [{"u": "U2", "n": 0}], "note": "<b>&amp;</b>", "price": 1.50}`},
		seed{at: day.Add(time.Hour), typ: audit.HousekeepingDone, details: `{"processed_events": 12}`},
	)
	p := r.getAuthed(t, marchQuery, nil).page(t)
	if len(p.Items) != 2 || p.NextCursor != nil || p.Limit != 100 {
		t.Fatalf("page = %+v", p)
	}
	resp := r.getAuthed(t, marchQuery+"&event_type=run_closed", nil)
	var body struct {
		Items []map[string]json.RawMessage `json:"items"`
	}
	if err := json.Unmarshal(resp.body, &body); err != nil || len(body.Items) != 1 {
		t.Fatalf("%s: %v", resp.body, err)
	}
	it := body.Items[0]
	want := map[string]string{
		"occurred_at": `"2026-03-01T00:01:30Z"`, "event_type": `"run_closed"`, "user_id": `"U1"`, "team_id": `"T1"`,
		"channel_id": `"C1"`, "run_id": `"` + run.String() + `"`, "ce_id": `"ce-1"`,
		// Verbatim: jsonb's own rendering; no HTML escaping, no number
		// re-formatting (1.50 stays 1.50).
		"details": `{"why": "0 runs in 30 days; team median 2", "note": "<b>&amp;</b>", "price": 1.50, "runner": "U2", "candidates": [{"n": 0, "u": "U2"}]}`,
	}
	for k, v := range want {
		if string(it[k]) != v {
			t.Errorf("%s = %s, want %s", k, it[k], v)
		}
	}
	if _, ok := it["id"]; !ok || len(it) != 9 {
		t.Errorf("item has fields %v, want the 9 columns", slices.Sorted(func(yield func(string) bool) {
			for k := range it {
				if !yield(k) {
					return
				}
			}
		}))
	}
	if ct, cc := resp.header.Get("Content-Type"), resp.header.Get("Cache-Control"); ct != "application/json" || cc != "no-store" {
		t.Errorf("Content-Type %q, Cache-Control %q", ct, cc)
	}
}

// TestInjectionIsHarmless: SQL in every filter is a value: it matches
// nothing, and the table is untouched.
func TestInjectionIsHarmless(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	r.insert(t, seed{at: day, typ: audit.OrderPlaced, user: "U1", team: "T1", channel: "C1"})
	attacks := []string{
		`' OR '1'='1`, `U1' --`, `x'; DELETE FROM audit_logs; --`, `x'); DROP TABLE audit_logs; --`,
		`' UNION SELECT 1, now(), usename, null, null, null, null, null, '{}' FROM pg_user --`,
		`1 OR 1=1`, `%`, `\`, `$1`, `'; SELECT pg_sleep(10); --`,
	}
	for _, param := range []string{"user_id", "channel_id", "team_id"} {
		for _, a := range attacks {
			p := r.getAuthed(t, marchQuery+"&"+param+"="+url.QueryEscape(a), nil).page(t)
			if len(p.Items) != 0 {
				t.Errorf("%s=%q returned %d rows", param, a, len(p.Items))
			}
		}
	}
	for _, param := range []string{"event_type", "run_id", "start_date", "limit", "cursor"} {
		if resp := r.getAuthed(t, marchQuery+"&"+param+"="+url.QueryEscape(attacks[0]), nil); resp.status != 400 {
			t.Errorf("%s=%q: status %d, want 400", param, attacks[0], resp.status)
		}
	}
	var n int
	if err := r.db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM audit_logs WHERE event_type <> 'audit_queried'`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("audit_logs holds %d rows (%v) after the attacks, want the 1 seeded", n, err)
	}
}

// TestExportNDJSON streams more than two export batches with Accept and
// with format=ndjson; every line is a row, in order; the export is recorded
// before the first byte and again with the rows sent.
func TestExportNDJSON(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	n := 2*auditquery.ExportBatch + 3
	if _, err := r.db.Pool.Exec(context.Background(), `
		INSERT INTO audit_logs (occurred_at, event_type, actor_user_id, details)
		SELECT $1::timestamptz + (i / 2) * interval '1 s', 'order_placed', 'U' || (i % 7), jsonb_build_object('i', i)
		FROM generate_series(1, $2) AS i`, day, n); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, query string
		header      map[string]string
	}{
		{"Accept header", marchQuery, map[string]string{"Accept": "application/json;q=0.5, application/x-ndjson"}},
		{"format parameter", marchQuery + "&format=ndjson", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp := r.getAuthed(t, tt.query, tt.header)
			if resp.status != 200 || resp.header.Get("Content-Type") != NDJSON {
				t.Fatalf("status %d, Content-Type %q", resp.status, resp.header.Get("Content-Type"))
			}
			sc := bufio.NewScanner(bytes.NewReader(resp.body))
			lines := 0
			var prev auditquery.Row
			for sc.Scan() {
				var row auditquery.Row
				if err := json.Unmarshal(sc.Bytes(), &row); err != nil {
					t.Fatalf("line %d: %v: %s", lines+1, err, sc.Bytes())
				}
				if lines > 0 && (row.OccurredAt.Before(prev.OccurredAt) || row.ID <= prev.ID) {
					t.Fatalf("line %d out of order", lines+1)
				}
				prev = row
				lines++
			}
			if lines != n {
				t.Fatalf("%d lines, want %d", lines, n)
			}
		})
	}
	started, done := r.accessRows(t, audit.AuditExportStarted), r.accessRows(t, audit.AuditQueried)
	if len(started) != 2 || len(done) != 2 {
		t.Fatalf("%d export_started and %d audit_queried records, want 2 each", len(started), len(done))
	}
	for _, d := range done {
		if d["rows"] != float64(n) || d["complete"] != true || d["format"] != "ndjson" {
			t.Errorf("export record %v, want rows %d complete", d, n)
		}
	}
	// A filter applies to exports too.
	resp := r.getAuthed(t, marchQuery+"&format=ndjson&user_id=U3", nil)
	if got := bytes.Count(resp.body, []byte("\n")); got != (n+4)/7 {
		t.Errorf("filtered export: %d lines, want %d", got, (n+4)/7)
	}
}

// TestAccessRecordedOrNoData: when the access record cannot be written, no
// audit data leaves (the role loses INSERT: a real refusal by PostgreSQL).
func TestAccessRecordedOrNoData(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	r.insert(t, seed{at: day, typ: audit.OrderPlaced, user: "U1"})
	if _, err := r.db.Pool.Exec(context.Background(), "REVOKE INSERT ON audit_logs FROM "+pgx.Identifier{r.roleID}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	for _, query := range []string{marchQuery, marchQuery + "&format=ndjson"} {
		resp := r.getAuthed(t, query, nil)
		if resp.status != 503 || strings.Contains(string(resp.body), "U1") {
			t.Errorf("%s: status %d: %s; want 503 without data", query, resp.status, resp.body)
		}
		resp.problem(t)
	}
}

// TestRoleLeastPrivilege: coffeebuddy_audit of deploy/postgres/roles.sql
// reads and appends to audit_logs (the other tests run the whole API as
// it), and PostgreSQL refuses it everything else.
func TestRoleLeastPrivilege(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	ctx := context.Background()
	r.insert(t, seed{at: day, typ: audit.OrderPlaced, user: "U1"})
	if resp := r.getAuthed(t, marchQuery, nil); len(resp.page(t).Items) != 1 {
		t.Fatal("the role cannot read through the API")
	}
	if n := len(r.accessRows(t, audit.AuditQueried)); n != 1 {
		t.Fatalf("the role's access record: %d rows, want 1", n)
	}
	refused := []string{
		`UPDATE audit_logs SET details = '{"forged": true}'`,
		`DELETE FROM audit_logs`,
		`TRUNCATE audit_logs`,
		`SELECT count(*) FROM coffee_runs`,
		`SELECT count(*) FROM orders`,
		`SELECT count(*) FROM users`,
		`INSERT INTO outbox (ce_id, ce_type, ce_source, topic, partition_key, data) VALUES ('x', 't', 's', 'coffee.orders', 'k', '{}')`,
		`CREATE TABLE evil (x int)`,
		`ALTER TABLE audit_logs DISABLE TRIGGER ALL`,
		`DROP INDEX audit_logs_occurred_id`,
	}
	for _, sql := range refused {
		_, err := r.role.Exec(ctx, sql)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || (pgErr.Code != "42501" && !strings.HasPrefix(pgErr.Code, "42")) {
			t.Errorf("%s: err %v, want a privilege refusal (42501)", sql, err)
		} else if pgErr.Code != "42501" {
			t.Logf("%s: refused with %s (%s)", sql, pgErr.Code, pgErr.Message)
		}
	}
	var n int
	if err := r.db.Pool.QueryRow(ctx, `SELECT count(*) FROM audit_logs WHERE details ? 'forged'`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("forged rows: %d, %v", n, err)
	}
	// And it holds nothing it was not granted.
	rows, _ := r.db.Pool.Query(ctx, `
		SELECT table_name || ':' || privilege_type FROM information_schema.role_table_grants
		WHERE grantee = $1 ORDER BY 1`, r.roleID)
	grants, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || !slices.Equal(grants, []string{"audit_logs:INSERT", "audit_logs:SELECT"}) {
		t.Fatalf("grants = %v, %v; want exactly SELECT and INSERT on audit_logs", grants, err)
	}
}

func TestOtherMethodsRefused(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	for _, m := range []string{"POST", "PUT", "DELETE", "PATCH"} {
		req, _ := http.NewRequest(m, r.srv.URL+Path+"?"+marchQuery, strings.NewReader("{}"))
		req.Header.Set("Authorization", "Bearer "+r.issuer.Token(t, nil))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		p := response{resp.StatusCode, resp.Header, b}
		if resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET, HEAD" || p.problem(t).Type != ProblemAboutBlank {
			t.Errorf("%s: %d %s", m, resp.StatusCode, b)
		}
	}
}

// TestExportCutOffByClient: a client that goes away mid-export stops the
// stream; the access record says how many rows were written through and
// that the export did not complete.
func TestExportCutOffByClient(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	n := 3 * auditquery.ExportBatch
	// ~1 KiB a row: far more than socket buffers hold.
	if _, err := r.db.Pool.Exec(context.Background(), `
		INSERT INTO audit_logs (occurred_at, event_type, details)
		SELECT $1::timestamptz + i * interval '1 ms', 'order_placed', jsonb_build_object('pad', repeat('x', 1000))
		FROM generate_series(1, $2) AS i`, day, n); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, r.srv.URL+Path+"?"+marchQuery+"&format=ndjson", nil)
	req.Header.Set("Authorization", "Bearer "+r.issuer.Token(t, nil))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || !strings.Contains(line, `"event_type":"order_placed"`) {
		t.Fatalf("first line %q, %v", line, err)
	}
	resp.Body.Close() // gone after one row
	var rec map[string]any
	deadline := time.Now().Add(10 * time.Second)
	for rec == nil {
		if time.Now().After(deadline) {
			t.Fatal("no access record for the cut-off export")
		}
		if acc := r.accessRows(t, audit.AuditQueried); len(acc) > 0 {
			rec = acc[0]
		}
		time.Sleep(20 * time.Millisecond)
	}
	if rec["complete"] != false || rec["rows"].(float64) >= float64(n) {
		t.Fatalf("access record %v, want complete false and fewer than %d rows", rec, n)
	}
	if len(r.accessRows(t, audit.AuditExportStarted)) != 1 {
		t.Error("no audit_export_started record")
	}
}
