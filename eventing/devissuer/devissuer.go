// Package devissuer is make run's stand-in for Ory Hydra when Hydra is not
// built: a tiny OAuth 2.0 authorization server on loopback that serves
// OpenID Connect discovery, a JWKS and a client-credentials /oauth2/token
// endpoint for one client generated per run, issuing RS256 JWT access tokens
// shaped like Hydra's (iss, sub, client_id, scp, aud, exp, iat, nbf, jti).
//
// Dev-only: no function imports it. It is no authorization server for
// anything else: one client, one key held in memory, loopback only.
package devissuer

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Options configure an issuer. Zero values are make run's defaults.
type Options struct {
	// Addr is the loopback address to listen on; default 127.0.0.1:0.
	Addr string
	// ClientID names the one client; default DefaultClientID.
	ClientID string
	// Scopes the client may ask for; default audit:read.
	Scopes []string
	// Audiences the client may ask for; default DefaultAudience.
	Audiences []string
	// TTL of access tokens; default one hour, as Hydra's.
	TTL time.Duration
	Log *slog.Logger
	Now func() time.Time
}

// Defaults of make run's audit client.
const (
	DefaultClientID = "coffeebuddy-local-audit"
	DefaultAudience = "coffeebuddy-audit"
	DefaultScope    = "audit:read"
)

// Issuer is a running dev issuer.
type Issuer struct {
	// URL is the issuer identifier, with a trailing slash as Hydra's
	// URLS_SELF_ISSUER: tokens' iss and discovery's issuer are exactly it.
	URL      string
	TokenURL string
	// ClientID and ClientSecret authenticate the one client (HTTP Basic or
	// form parameters). The secret is random per issuer.
	ClientID     string
	ClientSecret string

	o   Options
	key jose.JSONWebKey // private
	srv *http.Server
	ln  net.Listener
}

// ErrNotLoopback is returned by Start for an address beyond loopback: the
// client secret is printed in a banner and the issuer has no rate limits.
var ErrNotLoopback = errors.New("devissuer: listens on loopback only")

// Start listens and serves until Close.
func Start(o Options) (*Issuer, error) {
	if o.Addr == "" {
		o.Addr = "127.0.0.1:0"
	}
	if o.ClientID == "" {
		o.ClientID = DefaultClientID
	}
	if len(o.Scopes) == 0 {
		o.Scopes = []string{DefaultScope}
	}
	if len(o.Audiences) == 0 {
		o.Audiences = []string{DefaultAudience}
	}
	if o.TTL <= 0 {
		o.TTL = time.Hour
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	// An IP, not a name: a name could resolve beyond loopback.
	host, _, err := net.SplitHostPort(o.Addr)
	if err != nil {
		return nil, fmt.Errorf("devissuer: %w", err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("%w: %q", ErrNotLoopback, o.Addr)
	}
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return nil, fmt.Errorf("devissuer: %w", err)
	}
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("devissuer: %w", err)
	}
	is := &Issuer{
		URL:          "http://" + ln.Addr().String() + "/",
		ClientID:     o.ClientID,
		ClientSecret: randomHex(24),
		o:            o,
		key:          jose.JSONWebKey{Key: rk, KeyID: "devissuer-" + randomHex(8), Algorithm: string(jose.RS256), Use: "sig"},
		ln:           ln,
	}
	is.TokenURL = is.URL + "oauth2/token"
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", is.discovery)
	mux.HandleFunc("GET /.well-known/jwks.json", is.jwks)
	mux.HandleFunc("POST /oauth2/token", is.token)
	mux.HandleFunc("GET /health/ready", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	is.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := is.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			o.Log.Error("dev issuer stopped", "err", err)
		}
	}()
	return is, nil
}

// Close stops serving.
func (is *Issuer) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return is.srv.Shutdown(ctx)
}

func (is *Issuer) discovery(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                is.URL,
		"jwks_uri":                              is.URL + ".well-known/jwks.json",
		"token_endpoint":                        is.TokenURL,
		"grant_types_supported":                 []string{"client_credentials"},
		"token_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post"},
		"scopes_supported":                      is.o.Scopes,
		// OIDC discovery requires these, though this issuer has no users
		// and issues no ID tokens.
		"authorization_endpoint":                is.URL + "oauth2/auth",
		"response_types_supported":              []string{"token"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
	})
}

func (is *Issuer) jwks(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{is.key.Public()}})
}

// token is RFC 6749 §4.4 (client credentials) with Hydra's audience
// parameter; errors are §5.2's.
func (is *Issuer) token(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "the body is not a form")
		return
	}
	id, secret, basic := r.BasicAuth()
	if basic {
		// RFC 6749 §2.3.1: Basic credentials are form-urlencoded first.
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
	} else {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if id != is.ClientID || subtle.ConstantTimeCompare([]byte(secret), []byte(is.ClientSecret)) != 1 {
		if basic {
			w.Header().Set("WWW-Authenticate", `Basic realm="devissuer"`)
		}
		is.o.Log.Info("token refused: client authentication failed", "client_id", id)
		oauthError(w, http.StatusUnauthorized, "invalid_client", "client authentication failed")
		return
	}
	if gt := r.PostForm.Get("grant_type"); gt != "client_credentials" {
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "only client_credentials is supported")
		return
	}
	scopes := strings.Fields(r.PostForm.Get("scope"))
	for _, s := range scopes {
		if !slices.Contains(is.o.Scopes, s) {
			oauthError(w, http.StatusBadRequest, "invalid_scope", fmt.Sprintf("the client may not ask for scope %q", s))
			return
		}
	}
	// As Hydra: aud holds what was asked for (audience, space-separated or
	// repeated), each of which the client must be allowed.
	var aud []string
	for _, v := range r.PostForm["audience"] {
		aud = append(aud, strings.Fields(v)...)
	}
	for _, a := range aud {
		if !slices.Contains(is.o.Audiences, a) {
			oauthError(w, http.StatusBadRequest, "invalid_request", fmt.Sprintf("the client may not ask for audience %q", a))
			return
		}
	}
	now := is.o.Now()
	claims := map[string]any{
		"iss":       is.URL,
		"sub":       is.ClientID,
		"client_id": is.ClientID,
		"aud":       nonNil(aud),
		"scp":       nonNil(scopes),
		"iat":       now.Unix(),
		"nbf":       now.Unix(),
		"exp":       now.Add(is.o.TTL).Unix(),
		"jti":       randomHex(16),
	}
	tok, err := is.sign(claims)
	if err != nil {
		is.o.Log.Error("token signing failed", "err", err)
		oauthError(w, http.StatusInternalServerError, "server_error", "the token could not be signed")
		return
	}
	is.o.Log.Info("token issued", "client_id", is.ClientID, "scope", strings.Join(scopes, " "), "audience", strings.Join(aud, " "))
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": tok,
		"token_type":   "bearer",
		"expires_in":   int(is.o.TTL.Seconds()),
		"scope":        strings.Join(scopes, " "),
	})
}

func (is *Issuer) sign(claims map[string]any) (string, error) {
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: is.key}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return "", err
	}
	b, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	jws, err := s.Sign(b)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func oauthError(w http.ResponseWriter, status int, code, desc string) {
	writeJSON(w, status, map[string]string{"error": code, "error_description": desc})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails on Linux
	return hex.EncodeToString(b)
}
