package hydra_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coffeebuddy/coffeebuddy/eventing/devissuer"
	"github.com/coffeebuddy/coffeebuddy/eventing/hydra"
	"github.com/coffeebuddy/coffeebuddy/eventing/hydra/hydratest"
	"github.com/coffeebuddy/coffeebuddy/shared/logbuf"
)

// start runs a Hydra for the test; its output is logged if the test fails.
func start(t *testing.T) *hydra.Server {
	t.Helper()
	logs := &logbuf.Buffer{}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	s, err := hydra.Start(ctx, hydra.Options{Bin: hydratest.Bin(t, "../.."), Log: logs})
	if err != nil {
		t.Fatalf("%v\n%s", err, logs)
	}
	t.Cleanup(func() {
		s.Close()
		if t.Failed() {
			t.Logf("--- hydra output ---\n%s", logs)
		}
	})
	return s
}

// claims decodes a JWT's header and payload without checking anything.
func claims(t *testing.T, tok string) (header, payload map[string]any) {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWS compact token: %d parts", len(parts))
	}
	for i, dst := range []*map[string]any{&header, &payload} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, dst); err != nil {
			t.Fatal(err)
		}
	}
	return header, payload
}

// TestHydraServer runs the binary .ci/ensure-hydra built: it reports the pinned
// version, serves on the held loopback sockets through Unix sockets, and
// issues the RS256 JWT access tokens audit-api expects (iss exactly the
// issuer URL with its trailing slash, kid in the JWKS, scp, aud).
func TestHydraServer(t *testing.T) {
	s := start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	out, err := hydra.BinVersion(hydratest.Bin(t, "../.."))
	if err != nil || out != hydra.Version {
		t.Errorf("hydra version = %q (%v), want %s", out, err, hydra.Version)
	}
	if !strings.HasSuffix(s.IssuerURL, "/") || !strings.HasPrefix(s.IssuerURL, "http://127.0.0.1:") {
		t.Errorf("IssuerURL %q: want http://127.0.0.1:<port>/", s.IssuerURL)
	}
	var disc struct {
		Issuer        string `json:"issuer"`
		JWKS          string `json:"jwks_uri"`
		TokenEndpoint string `json:"token_endpoint"`
	}
	getJSON(t, s.PublicURL+"/.well-known/openid-configuration", &disc)
	if disc.Issuer != s.IssuerURL || disc.TokenEndpoint != s.TokenURL {
		t.Errorf("discovery issuer %q token %q, want %q %q", disc.Issuer, disc.TokenEndpoint, s.IssuerURL, s.TokenURL)
	}

	c, err := s.CreateClient(ctx, hydra.Client{Name: "audit", Scope: "audit:read", Audience: []string{"coffeebuddy-audit"}})
	if err != nil {
		t.Fatal(err)
	}
	if c.ID == "" || c.Secret == "" {
		t.Fatalf("created client has no id or secret: %+v", c)
	}
	tok, err := devissuer.FetchToken(ctx, s.TokenURL, c.ID, c.Secret, "audit:read", "coffeebuddy-audit")
	if err != nil {
		t.Fatal(err)
	}
	h, p := claims(t, tok)
	if h["alg"] != "RS256" {
		t.Errorf("alg %v, want RS256", h["alg"])
	}
	var set struct{ Keys []struct{ Kid string } }
	getJSON(t, disc.JWKS, &set)
	found := false
	for _, k := range set.Keys {
		found = found || k.Kid == h["kid"]
	}
	if !found {
		t.Errorf("kid %v not in %s", h["kid"], disc.JWKS)
	}
	if p["iss"] != s.IssuerURL || p["client_id"] != c.ID || p["sub"] != c.ID {
		t.Errorf("iss %v client_id %v sub %v; want %s, %s, %s", p["iss"], p["client_id"], p["sub"], s.IssuerURL, c.ID, c.ID)
	}
	if got, _ := json.Marshal(p["scp"]); string(got) != `["audit:read"]` {
		t.Errorf("scp %s", got)
	}
	if got, _ := json.Marshal(p["aud"]); string(got) != `["coffeebuddy-audit"]` {
		t.Errorf("aud %s", got)
	}

	// A scope the client was not given is refused.
	if _, err := devissuer.FetchToken(ctx, s.TokenURL, c.ID, c.Secret, "audit:write", ""); err == nil {
		t.Error("token for a scope the client lacks: no error")
	}
}

// TestHydraStop: Close ends Hydra and frees its ports and folder.
func TestHydraStop(t *testing.T) {
	s := start(t)
	s.Close()
	if s.Running() {
		t.Fatal("hydra still running after Close")
	}
	if _, err := net.DialTimeout("tcp", strings.TrimPrefix(s.PublicURL, "http://"), time.Second); err == nil {
		t.Error("public port still accepts connections after Close")
	}
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %s", url, resp.Status, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("GET %s: %v: %s", url, err, b)
	}
}
