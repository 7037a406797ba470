package devstack_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/coffeebuddy/coffeebuddy/eventing/devissuer"
	"github.com/coffeebuddy/coffeebuddy/eventing/devstack"
	"github.com/coffeebuddy/coffeebuddy/eventing/hydra"
	"github.com/coffeebuddy/coffeebuddy/eventing/hydra/hydratest"
	"github.com/go-jose/go-jose/v4"
)

// TestHydraAuditEndToEnd is issue 8's end-to-end check with a real Ory
// Hydra v2 as the token issuer, wired as make run wires it: the stack
// starts Hydra (serve all --dev, in-memory, loopback) and gives audit-api
// OIDC_ISSUER_URL = Hydra's issuer exactly, trailing slash included. A run
// happens through every layer; then a client-credentials token from Hydra
// reads its audit rows (by HTTP and by the banner's command), each read is
// recorded with Hydra's client as actor, and audit-api refuses a token
// without the scope (403), one from another Hydra (401) and forged ones
// (401), recording none of them.
func TestHydraAuditEndToEnd(t *testing.T) {
	bin := hydratest.Bin(t, "../..")
	began := time.Now()
	s := startStackWith(t, nil, func(o *devstack.Options) { o.HydraBin = bin })
	t.Logf("stack with Hydra ready in %s", time.Since(began).Round(time.Millisecond))
	oc := s.OIDC
	if oc.Issuer != "Ory Hydra "+hydra.Version || oc.AdminURL == "" || !oc.Local() {
		t.Fatalf("OIDC %+v: want a local Ory Hydra %s", oc, hydra.Version)
	}
	if !strings.HasPrefix(oc.IssuerURL, "http://127.0.0.1:") || !strings.HasSuffix(oc.IssuerURL, "/") {
		t.Fatalf("issuer %q: want loopback, with Hydra's trailing slash", oc.IssuerURL)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	api := s.Functions[devstack.AuditAPIName] + devstack.AuditPath

	// Real activity: a run started, announced and ordered in, through
	// slack-ingress, Kafka, the eventing stand-in and the functions.
	p := devstack.NewPlayer(s, "C0HYDRA")
	_, err := p.Command(ctx, alice, "/coffee", "10")
	must(t, err)
	_, runID, err := p.RunMessage(ctx)
	must(t, err)
	_, err = p.Order(ctx, bob, "latte", "medium", "")
	must(t, err)
	_, err = p.WaitEphemeral(ctx, bob, "Your order is in") // order-confirm ran after order-place committed
	must(t, err)

	// A token from Hydra for the stack's client, fetched as any client would.
	tok, err := devissuer.FetchToken(ctx, oc.TokenURL, oc.ClientID, oc.ClientSecret, oc.Scope, oc.Audience)
	must(t, err)
	header, claims := decodeJWT(t, tok)
	if header["alg"] != "RS256" || claims["iss"] != oc.IssuerURL || claims["client_id"] != oc.ClientID {
		t.Fatalf("Hydra's token: header %v claims %v; want RS256, iss %s, client_id %s", header, claims, oc.IssuerURL, oc.ClientID)
	}

	day := time.Now().UTC()
	query := url.Values{"start_date": {day.Format(time.DateOnly)}, "end_date": {day.AddDate(0, 0, 1).Format(time.DateOnly)}, "run_id": {runID}}
	status, _, body := auditGet(t, api+"?"+query.Encode(), tok)
	if status != http.StatusOK {
		t.Fatalf("GET %s with Hydra's token: %d %s", api, status, body)
	}
	types := map[string]bool{}
	for _, r := range items(t, body) {
		if r.RunID != runID {
			t.Errorf("row of run %s in a query for run %s", r.RunID, runID)
		}
		types[r.EventType] = true
	}
	for _, want := range []string{"run_created", "run_announced", "order_placed"} {
		if !types[want] {
			t.Errorf("no %s row for run %s: %s", want, runID, body)
		}
	}

	// The command make run's banner prints, pasted into sh as is.
	if _, err := exec.LookPath("curl"); err == nil {
		cmd := oc.AuditCommand(s.Functions[devstack.AuditAPIName], time.Now())
		out, err := exec.CommandContext(ctx, "sh", "-c", cmd).CombinedOutput()
		if err != nil {
			t.Fatalf("banner command %q: %v\n%s", cmd, err, out)
		}
		found := false
		for _, r := range items(t, out) {
			found = found || (r.EventType == "run_created" && r.RunID == runID)
		}
		if !found {
			t.Errorf("banner command: no run_created row for run %s: %s", runID, out)
		}
	} else {
		t.Log("curl not installed: the banner command is not run")
	}

	// Every read is on record, with Hydra's client as actor.
	db := openDB(t, s.DatabaseURL)
	reads := count(t, db, `SELECT count(*) FROM audit_logs WHERE event_type = 'audit_queried'`)
	if reads < 1 {
		t.Fatal("no audit_queried row after a read")
	}
	if n := count(t, db, `SELECT count(*) FROM audit_logs WHERE event_type = 'audit_queried'
		AND actor_user_id = $1 AND details->>'client_id' = $1 AND details->>'sub' = $1`, oc.ClientID); n != reads {
		t.Errorf("%d of %d audit_queried rows name Hydra's client %s as actor", n, reads, oc.ClientID)
	}

	// Refused: another client of the same Hydra without audit:read (403),
	// a client of another Hydra (401), and forgeries (401).
	other, err := hydra.CreateClient(ctx, oc.AdminURL, hydra.Client{Name: "no audit", Scope: "audit:other", Audience: []string{oc.Audience}})
	must(t, err)
	noScope, err := devissuer.FetchToken(ctx, oc.TokenURL, other.ID, other.Secret, "audit:other", oc.Audience)
	must(t, err)

	h2, err := hydra.Start(ctx, hydra.Options{Bin: bin})
	must(t, err)
	defer h2.Close()
	c2, err := h2.CreateClient(ctx, hydra.Client{Scope: oc.Scope, Audience: []string{oc.Audience}})
	must(t, err)
	foreign, err := devissuer.FetchToken(ctx, h2.TokenURL, c2.ID, c2.Secret, oc.Scope, oc.Audience)
	must(t, err)

	tests := []struct {
		name, token string
		status      int
		challenge   string
	}{
		{"client without audit:read", noScope, http.StatusForbidden, `error="insufficient_scope"`},
		{"token from another Hydra", foreign, http.StatusUnauthorized, `error="invalid_token"`},
		{"Hydra's token with its claims edited", tamper(t, tok, map[string]any{"sub": "mallory", "client_id": "mallory"}), http.StatusUnauthorized, `error="invalid_token"`},
		{"re-signed under Hydra's kid by another key", resign(t, tok), http.StatusUnauthorized, `error="invalid_token"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, h, body := auditGet(t, api+"?"+query.Encode(), tt.token)
			if status != tt.status || !strings.Contains(h.Get("WWW-Authenticate"), tt.challenge) {
				t.Errorf("%d %q %s; want %d with %s", status, h.Get("WWW-Authenticate"), body, tt.status, tt.challenge)
			}
		})
	}
	if n := count(t, db, `SELECT count(*) FROM audit_logs WHERE event_type = 'audit_queried'`); n != reads {
		t.Errorf("%d audit_queried rows after refusals, want still %d: refused requests are not recorded", n, reads)
	}
	t.Logf("whole test %s", time.Since(began).Round(time.Millisecond))
}

type auditRow struct {
	EventType string `json:"event_type"`
	RunID     string `json:"run_id"`
}

func items(t *testing.T, body []byte) []auditRow {
	t.Helper()
	var page struct {
		Items []auditRow `json:"items"`
	}
	if err := json.Unmarshal(body, &page); err != nil {
		t.Fatalf("not an audit page: %v: %s", err, body)
	}
	return page.Items
}

func auditGet(t *testing.T, u, token string) (int, http.Header, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

func decodeJWT(t *testing.T, tok string) (header, claims map[string]any) {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a compact JWS: %d parts", len(parts))
	}
	for i, dst := range []*map[string]any{&header, &claims} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, dst); err != nil {
			t.Fatal(err)
		}
	}
	return header, claims
}

// tamper replaces claims in tok's payload and keeps header and signature.
func tamper(t *testing.T, tok string, edit map[string]any) string {
	t.Helper()
	_, claims := decodeJWT(t, tok)
	for k, v := range edit {
		claims[k] = v
	}
	b, _ := json.Marshal(claims)
	parts := strings.Split(tok, ".")
	return parts[0] + "." + base64.RawURLEncoding.EncodeToString(b) + "." + parts[2]
}

// resign signs tok's claims with a fresh RSA key under tok's own kid: what
// an attacker without Hydra's key can do at best.
func resign(t *testing.T, tok string) string {
	t.Helper()
	header, claims := decodeJWT(t, tok)
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	must(t, err)
	kid, _ := header["kid"].(string)
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: k, KeyID: kid}}, (&jose.SignerOptions{}).WithType("JWT"))
	must(t, err)
	b, _ := json.Marshal(claims)
	jws, err := s.Sign(b)
	must(t, err)
	out, err := jws.CompactSerialize()
	must(t, err)
	return out
}
