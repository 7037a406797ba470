package oidcauth_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coffeebuddy/coffeebuddy/shared/oidcauth"
	"github.com/coffeebuddy/coffeebuddy/shared/oidcauth/oidctest"
)

const audience = "coffeebuddy-audit"

// started returns a verifier for is, discovered.
func started(t *testing.T, is *oidctest.Issuer, edit func(*oidcauth.Config)) *oidcauth.Verifier {
	t.Helper()
	cfg := oidcauth.Config{IssuerURL: is.URL, Audience: audience, RequiredScope: oidcauth.DefaultScope, Algorithms: oidcauth.DefaultAlgorithms}
	if edit != nil {
		edit(&cfg)
	}
	v, err := oidcauth.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	v.Start(ctx)
	waitReady(t, v)
	return v
}

func waitReady(t *testing.T, v *oidcauth.Verifier) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for v.Ready(context.Background()) != nil {
		if time.Now().After(deadline) {
			t.Fatalf("not ready: %v", v.Ready(context.Background()))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func request(header ...string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/api/v1/audit", nil)
	for _, h := range header {
		r.Header.Add("Authorization", h)
	}
	return r
}

func TestAuthenticate(t *testing.T) {
	t.Parallel()
	is := oidctest.New(t)
	v := started(t, is, nil)
	hour := time.Hour
	tests := []struct {
		name      string
		header    []string
		status    int    // 0: accepted
		challenge string // the WWW-Authenticate value must contain this
		noError   bool   // the challenge must carry no error= (RFC 6750 §3.1)
	}{
		{"valid RS256 token", []string{"Bearer " + is.Token(t, nil)}, 0, "", false},
		{"valid ES256 token", []string{"Bearer " + is.TokenWith(t, "ES256", nil)}, 0, "", false},
		{"scheme is case-insensitive", []string{"bearer " + is.Token(t, nil)}, 0, "", false},
		{"scope as a space-separated string", []string{"Bearer " + is.Token(t, oidctest.Claims{"scp": nil, "scope": "openid audit:read"})}, 0, "", false},
		{"no Authorization header", nil, 401, `Bearer realm="coffeebuddy"`, true},
		{"Basic credentials", []string{"Basic YWxhZGRpbjpvcGVuc2VzYW1l"}, 401, `Bearer realm="coffeebuddy"`, true},
		{"Bearer without a token", []string{"Bearer "}, 400, `error="invalid_request"`, false},
		{"two Authorization headers", []string{"Bearer a", "Bearer b"}, 400, `error="invalid_request"`, false},
		{"not a JWT", []string{"Bearer not-a-jwt"}, 401, `error="invalid_token"`, false},
		{"expired", []string{"Bearer " + is.Token(t, oidctest.Claims{"exp": time.Now().Add(-time.Minute).Unix()})}, 401, `error="invalid_token"`, false},
		{"no exp", []string{"Bearer " + is.Token(t, oidctest.Claims{"exp": nil})}, 401, `error="invalid_token"`, false},
		{"not yet valid (nbf in an hour)", []string{"Bearer " + is.Token(t, oidctest.Claims{"nbf": time.Now().Add(hour).Unix()})}, 401, `error="invalid_token"`, false},
		{"wrong audience", []string{"Bearer " + is.Token(t, oidctest.Claims{"aud": []string{"someone-else"}})}, 401, `error="invalid_token"`, false},
		{"no audience", []string{"Bearer " + is.Token(t, oidctest.Claims{"aud": nil})}, 401, `error="invalid_token"`, false},
		{"wrong issuer", []string{"Bearer " + is.Token(t, oidctest.Claims{"iss": "https://evil.example/"})}, 401, `error="invalid_token"`, false},
		{"issuer differs by a trailing slash", []string{"Bearer " + is.Token(t, oidctest.Claims{"iss": is.URL + "/"})}, 401, `error="invalid_token"`, false},
		{"alg none", []string{"Bearer " + is.UnsignedToken(t, nil)}, 401, `error="invalid_token"`, false},
		{"HS256 signed with the public key", []string{"Bearer " + is.HMACToken(t, nil)}, 401, `error="invalid_token"`, false},
		{"bad signature (claims changed)", []string{"Bearer " + is.Tamper(t, is.Token(t, nil), oidctest.Claims{"sub": "admin"})}, 401, `error="invalid_token"`, false},
		{"unknown key (kid not in JWKS)", []string{"Bearer " + is.ForeignToken(t, "stranger", nil)}, 401, `error="invalid_token"`, false},
		{"foreign key reusing a published kid", []string{"Bearer " + is.ForeignToken(t, "key-1-RS256", nil)}, 401, `error="invalid_token"`, false},
		{"foreign key without kid", []string{"Bearer " + is.ForeignToken(t, "", nil)}, 401, `error="invalid_token"`, false},
		{"no subject", []string{"Bearer " + is.Token(t, oidctest.Claims{"sub": nil})}, 401, `error="invalid_token"`, false},
		{"scp of the wrong type", []string{"Bearer " + is.Token(t, oidctest.Claims{"scp": 7})}, 401, `error="invalid_token"`, false},
		{"valid token without the scope", []string{"Bearer " + is.Token(t, oidctest.Claims{"scp": []string{"openid", "offline"}})}, 403, `error="insufficient_scope"`, false},
		{"scope that only starts like audit:read", []string{"Bearer " + is.Token(t, oidctest.Claims{"scp": []string{"audit:readonly"}})}, 403, `scope="audit:read"`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := v.Authenticate(request(tt.header...))
			if tt.status == 0 {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if p.Subject != "audit-client" || p.ClientID != "audit-client" {
					t.Fatalf("principal = %+v", p)
				}
				return
			}
			var ae *oidcauth.Error
			if !errors.As(err, &ae) {
				t.Fatalf("err = %v, want *oidcauth.Error", err)
			}
			if ae.Status != tt.status {
				t.Fatalf("status = %d (%v), want %d", ae.Status, ae, tt.status)
			}
			ch := ae.Challenge()
			if !strings.HasPrefix(ch, "Bearer ") || !strings.Contains(ch, tt.challenge) {
				t.Fatalf("challenge %q lacks %q", ch, tt.challenge)
			}
			if tt.noError && strings.Contains(ch, "error=") {
				t.Fatalf("challenge %q carries an error for a request without credentials", ch)
			}
			for _, h := range tt.header {
				if tok := strings.TrimPrefix(h, "Bearer "); len(tok) > 20 && (strings.Contains(ch, tok) || strings.Contains(ae.Error(), tok)) {
					t.Fatal("the refusal quotes the token")
				}
			}
		})
	}
}

// TestKeyRotation: the issuer rotates its signing key; a token signed with
// the new key is accepted by the same verifier (go-oidc refetches the JWKS
// on an unknown kid), and once the old key is gone its tokens are refused.
func TestKeyRotation(t *testing.T) {
	t.Parallel()
	is := oidctest.New(t)
	v := started(t, is, nil)
	old := is.Token(t, nil)
	if _, err := v.Authenticate(request("Bearer " + old)); err != nil {
		t.Fatalf("before rotation: %v", err)
	}
	fetches := is.JWKSFetches()
	is.RotateKey(t)
	if _, err := v.Authenticate(request("Bearer " + is.Token(t, nil))); err != nil {
		t.Fatalf("token signed with the rotated key: %v", err)
	}
	if is.JWKSFetches() == fetches {
		t.Error("the new key was accepted without fetching the JWKS")
	}
	if _, err := v.Authenticate(request("Bearer " + old)); err == nil {
		t.Error("a token signed with the retired key is still accepted")
	}
}

// TestReadinessWaitsForDiscovery: while the issuer cannot be discovered the
// verifier is not ready and refuses with 503 (not 401: the token may be
// fine); it retries on its own and becomes ready once the issuer answers.
func TestReadinessWaitsForDiscovery(t *testing.T) {
	t.Parallel()
	is := oidctest.New(t)
	is.SetDown(true)
	v, err := oidcauth.New(oidcauth.Config{IssuerURL: is.URL, Audience: audience, RequiredScope: "audit:read", Algorithms: oidcauth.DefaultAlgorithms},
		slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	v.Start(ctx)
	time.Sleep(400 * time.Millisecond) // at least one failed attempt
	if err := v.Ready(ctx); !errors.Is(err, oidcauth.ErrNotReady) {
		t.Fatalf("Ready while the issuer is down = %v, want ErrNotReady", err)
	}
	var ae *oidcauth.Error
	if _, err := v.Authenticate(request("Bearer " + is.Token(t, nil))); !errors.As(err, &ae) || ae.Status != 503 || ae.Challenge() != "" {
		t.Fatalf("Authenticate before discovery = %v, want 503 without a challenge", err)
	}
	is.SetDown(false)
	waitReady(t, v)
	if _, err := v.Authenticate(request("Bearer " + is.Token(t, nil))); err != nil {
		t.Fatalf("after discovery: %v", err)
	}
}

// TestSkipAudienceCheck: Hydra's client-credentials tokens carry no aud
// unless one is requested; they pass only when the check is explicitly off.
func TestSkipAudienceCheck(t *testing.T) {
	t.Parallel()
	is := oidctest.New(t)
	v := started(t, is, func(c *oidcauth.Config) { c.Audience, c.SkipAudienceCheck = "", true })
	for _, aud := range []any{nil, []string{"anything"}} {
		if _, err := v.Authenticate(request("Bearer " + is.Token(t, oidctest.Claims{"aud": aud}))); err != nil {
			t.Errorf("aud %v: %v", aud, err)
		}
	}
	// Everything else is still checked.
	if _, err := v.Authenticate(request("Bearer " + is.Token(t, oidctest.Claims{"iss": "https://evil.example/"}))); err == nil {
		t.Error("wrong issuer accepted with the audience check off")
	}
}

func TestNotConfiguredRefusesEverything(t *testing.T) {
	t.Parallel()
	v, err := oidcauth.New(oidcauth.Config{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	v.Start(context.Background())
	if err := v.Ready(context.Background()); err != nil {
		t.Fatalf("Ready = %v: an unconfigured verifier must not block the process", err)
	}
	var ae *oidcauth.Error
	if _, err := v.Authenticate(request("Bearer x.y.z")); !errors.As(err, &ae) || ae.Status != 503 || ae.Reason != "not_configured" {
		t.Fatalf("Authenticate = %v, want 503 not_configured", err)
	}
}

func TestConfigFromEnv(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		env     map[string]string
		wantErr string
		check   func(oidcauth.Config) bool
	}{
		{"unset: not configured", map[string]string{}, "", func(c oidcauth.Config) bool { return !c.Enabled() }},
		{"issuer and audience", map[string]string{"OIDC_ISSUER_URL": "https://hydra.example/", "OIDC_AUDIENCE": "a"}, "",
			func(c oidcauth.Config) bool {
				return c.Enabled() && c.Audience == "a" && c.RequiredScope == "audit:read" && !c.SkipAudienceCheck
			}},
		{"custom scope", map[string]string{"OIDC_ISSUER_URL": "https://h/", "OIDC_AUDIENCE": "a", "OIDC_REQUIRED_SCOPE": "audit:export"}, "",
			func(c oidcauth.Config) bool { return c.RequiredScope == "audit:export" }},
		{"explicit skip", map[string]string{"OIDC_ISSUER_URL": "https://h/", "OIDC_SKIP_AUDIENCE_CHECK": "true"}, "",
			func(c oidcauth.Config) bool { return c.SkipAudienceCheck }},
		{"empty audience is not a silent skip", map[string]string{"OIDC_ISSUER_URL": "https://h/"}, "OIDC_AUDIENCE is required", nil},
		{"skip=false is not a skip", map[string]string{"OIDC_ISSUER_URL": "https://h/", "OIDC_SKIP_AUDIENCE_CHECK": "false"}, "OIDC_AUDIENCE is required", nil},
		{"audience and skip", map[string]string{"OIDC_ISSUER_URL": "https://h/", "OIDC_AUDIENCE": "a", "OIDC_SKIP_AUDIENCE_CHECK": "true"}, "contradict", nil},
		{"bad skip", map[string]string{"OIDC_ISSUER_URL": "https://h/", "OIDC_SKIP_AUDIENCE_CHECK": "yes please"}, "OIDC_SKIP_AUDIENCE_CHECK", nil},
		{"issuer not a URL", map[string]string{"OIDC_ISSUER_URL": "hydra", "OIDC_AUDIENCE": "a"}, "OIDC_ISSUER_URL", nil},
		{"two scopes", map[string]string{"OIDC_ISSUER_URL": "https://h/", "OIDC_AUDIENCE": "a", "OIDC_REQUIRED_SCOPE": "a b"}, "OIDC_REQUIRED_SCOPE", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := oidcauth.ConfigFromEnv(func(k string) string { return tt.env[k] })
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || !tt.check(c) {
				t.Fatalf("ConfigFromEnv = %+v, %v", c, err)
			}
		})
	}
}
