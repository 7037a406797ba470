package devissuer_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coffeebuddy/coffeebuddy/eventing/devissuer"
	"github.com/coffeebuddy/coffeebuddy/shared/oidcauth"
)

func start(t *testing.T) *devissuer.Issuer {
	t.Helper()
	is, err := devissuer.Start(devissuer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = is.Close() })
	return is
}

// verifier is audit-api's own token check, configured as make run
// configures it for this issuer.
func verifier(t *testing.T, is *devissuer.Issuer) *oidcauth.Verifier {
	t.Helper()
	v, err := oidcauth.New(oidcauth.Config{IssuerURL: is.URL, Audience: devissuer.DefaultAudience,
		RequiredScope: devissuer.DefaultScope, Algorithms: oidcauth.DefaultAlgorithms}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	v.Start(ctx)
	deadline := time.Now().Add(10 * time.Second)
	for v.Ready(ctx) != nil { // discovery runs in the background
		if time.Now().After(deadline) {
			t.Fatalf("discovery of %s: %v", is.URL, v.Ready(ctx))
		}
		time.Sleep(10 * time.Millisecond)
	}
	return v
}

func authenticate(v *oidcauth.Verifier, tok string) (oidcauth.Principal, error) {
	r, _ := http.NewRequest(http.MethodGet, "/api/v1/audit", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	return v.Authenticate(r)
}

// TestTokenVerifiedByAuditAPI: a token from the dev issuer passes
// oidcauth exactly as one from Hydra does (discovery, JWKS, RS256, iss with
// its trailing slash, aud, scp), and names the client.
func TestTokenVerifiedByAuditAPI(t *testing.T) {
	is := start(t)
	if !strings.HasSuffix(is.URL, "/") || !strings.HasPrefix(is.URL, "http://127.0.0.1:") {
		t.Fatalf("URL %q: want http://127.0.0.1:<port>/", is.URL)
	}
	v := verifier(t, is)
	ctx := context.Background()
	tok, err := devissuer.FetchToken(ctx, is.TokenURL, is.ClientID, is.ClientSecret, "audit:read", devissuer.DefaultAudience)
	if err != nil {
		t.Fatal(err)
	}
	p, err := authenticate(v, tok)
	if err != nil {
		t.Fatalf("audit-api's verifier refuses the dev issuer's token: %v", err)
	}
	if p.Subject != is.ClientID || p.ClientID != is.ClientID || p.Issuer != is.URL {
		t.Errorf("principal %+v; want sub and client_id %s, iss %s", p, is.ClientID, is.URL)
	}

	// Without the audience, aud is empty (as Hydra's): audit-api refuses it.
	tok, err = devissuer.FetchToken(ctx, is.TokenURL, is.ClientID, is.ClientSecret, "audit:read", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := authenticate(v, tok); !isStatus(err, http.StatusUnauthorized) {
		t.Errorf("token without audience: %v, want 401", err)
	}
	// Without the scope: 403.
	tok, err = devissuer.FetchToken(ctx, is.TokenURL, is.ClientID, is.ClientSecret, "", devissuer.DefaultAudience)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := authenticate(v, tok); !isStatus(err, http.StatusForbidden) {
		t.Errorf("token without scope: %v, want 403", err)
	}
	// Another run's issuer (another key, another port): 401.
	other := start(t)
	tok, err = devissuer.FetchToken(ctx, other.TokenURL, other.ClientID, other.ClientSecret, "audit:read", devissuer.DefaultAudience)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := authenticate(v, tok); !isStatus(err, http.StatusUnauthorized) {
		t.Errorf("another issuer's token: %v, want 401", err)
	}
}

func isStatus(err error, status int) bool {
	var e *oidcauth.Error
	return errors.As(err, &e) && e.Status == status
}

// TestTokenEndpoint: RFC 6749's answers for what the endpoint refuses.
func TestTokenEndpoint(t *testing.T) {
	is := start(t)
	basic := func(id, secret string) func(*http.Request) {
		return func(r *http.Request) { r.SetBasicAuth(id, secret) }
	}
	good := basic(is.ClientID, is.ClientSecret)
	tests := []struct {
		name   string
		auth   func(*http.Request)
		form   url.Values
		status int
		code   string
	}{
		{"basic", good, url.Values{"grant_type": {"client_credentials"}, "scope": {"audit:read"}}, 200, ""},
		{"form credentials", func(*http.Request) {}, url.Values{"grant_type": {"client_credentials"}, "client_id": {is.ClientID}, "client_secret": {is.ClientSecret}}, 200, ""},
		{"no scope asked", good, url.Values{"grant_type": {"client_credentials"}}, 200, ""},
		{"wrong secret", basic(is.ClientID, is.ClientSecret+"x"), url.Values{"grant_type": {"client_credentials"}}, 401, "invalid_client"},
		{"other client", basic("someone", is.ClientSecret), url.Values{"grant_type": {"client_credentials"}}, 401, "invalid_client"},
		{"no credentials", func(*http.Request) {}, url.Values{"grant_type": {"client_credentials"}}, 401, "invalid_client"},
		{"password grant", good, url.Values{"grant_type": {"password"}, "username": {"u"}, "password": {"p"}}, 400, "unsupported_grant_type"},
		{"scope not allowed", good, url.Values{"grant_type": {"client_credentials"}, "scope": {"audit:read audit:write"}}, 400, "invalid_scope"},
		{"audience not allowed", good, url.Values{"grant_type": {"client_credentials"}, "audience": {"elsewhere"}}, 400, "invalid_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, is.TokenURL, strings.NewReader(tt.form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			tt.auth(req)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			var body struct {
				AccessToken string `json:"access_token"`
				Error       string `json:"error"`
			}
			_ = json.Unmarshal(b, &body)
			if resp.StatusCode != tt.status || body.Error != tt.code || (tt.status == 200) != (body.AccessToken != "") {
				t.Errorf("%d %s; want %d %q", resp.StatusCode, b, tt.status, tt.code)
			}
			if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control %q, want no-store", cc)
			}
		})
	}
}

// TestLoopbackOnly: the issuer never listens beyond loopback, whatever it
// is asked (hostnames included); a fresh secret per issuer.
func TestLoopbackOnly(t *testing.T) {
	for _, addr := range []string{":0", "0.0.0.0:0", "[::]:0", "192.0.2.1:0", "localhost:0"} {
		if is, err := devissuer.Start(devissuer.Options{Addr: addr}); !errors.Is(err, devissuer.ErrNotLoopback) {
			if is != nil {
				is.Close()
			}
			t.Errorf("Start(%q): %v, want ErrNotLoopback", addr, err)
		}
	}
	a, b := start(t), start(t)
	if a.ClientSecret == b.ClientSecret || len(a.ClientSecret) < 32 {
		t.Errorf("secrets %q and %q: want random, 32+ characters", a.ClientSecret, b.ClientSecret)
	}
}
