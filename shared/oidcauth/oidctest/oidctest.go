// Package oidctest is a local OpenID Connect issuer for tests: an httptest
// server with /.well-known/openid-configuration and /jwks.json that signs
// Hydra-shaped JWT access tokens with go-jose. Test support only: no
// production package imports it.
package oidctest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Issuer is a running test issuer.
type Issuer struct {
	URL string // the issuer identifier: the server's base URL

	srv *httptest.Server

	mu   sync.Mutex
	keys []jose.JSONWebKey // private; published as public in /jwks.json
	next int               // key id counter

	down       atomic.Bool  // discovery answers 503
	jwksFetchs atomic.Int64 // /jwks.json requests served
}

// New starts an issuer with one RS256 and one ES256 signing key.
func New(t testing.TB) *Issuer {
	t.Helper()
	is := &Issuer{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		if is.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		writeJSON(w, map[string]any{
			"issuer":                                is.URL,
			"jwks_uri":                              is.URL + "/jwks.json",
			"token_endpoint":                        is.URL + "/oauth2/token",
			"authorization_endpoint":                is.URL + "/oauth2/auth",
			"response_types_supported":              []string{"code"},
			"subject_types_supported":               []string{"public"},
			"id_token_signing_alg_values_supported": []string{"RS256", "ES256"},
		})
	})
	mux.HandleFunc("GET /jwks.json", func(w http.ResponseWriter, r *http.Request) {
		is.jwksFetchs.Add(1)
		is.mu.Lock()
		set := jose.JSONWebKeySet{}
		for _, k := range is.keys {
			set.Keys = append(set.Keys, k.Public())
		}
		is.mu.Unlock()
		writeJSON(w, set)
	})
	is.srv = httptest.NewServer(mux)
	t.Cleanup(is.srv.Close)
	is.URL = is.srv.URL
	is.keys = []jose.JSONWebKey{is.newKey(t, "RS256"), is.newKey(t, "ES256")}
	return is
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// newKey makes a private key for alg with a fresh kid.
func (is *Issuer) newKey(t testing.TB, alg string) jose.JSONWebKey {
	t.Helper()
	is.next++
	var k crypto.Signer
	var err error
	switch alg {
	case "RS256":
		k, err = rsa.GenerateKey(rand.Reader, 2048)
	case "ES256":
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		t.Fatalf("oidctest: no key type for %s", alg)
	}
	if err != nil {
		t.Fatal(err)
	}
	return jose.JSONWebKey{Key: k, KeyID: fmt.Sprintf("key-%d-%s", is.next, alg), Algorithm: alg, Use: "sig"}
}

// SetDown makes discovery answer 503 (down) or work again.
func (is *Issuer) SetDown(down bool) { is.down.Store(down) }

// JWKSFetches counts /jwks.json requests.
func (is *Issuer) JWKSFetches() int64 { return is.jwksFetchs.Load() }

// RotateKey replaces the RS256 key with a new one (new kid); the old one is
// no longer published. It returns the new kid.
func (is *Issuer) RotateKey(t testing.TB) string {
	t.Helper()
	k := is.newKey(t, "RS256")
	is.mu.Lock()
	defer is.mu.Unlock()
	for i := range is.keys {
		if is.keys[i].Algorithm == "RS256" {
			is.keys[i] = k
		}
	}
	return k.KeyID
}

// Claims are a token's claims; Token fills the Hydra defaults around them.
type Claims map[string]any

// DefaultClaims are those of a Hydra client-credentials token for client
// "audit-client" with scope audit:read and audience "coffeebuddy-audit",
// valid for 5 minutes.
func (is *Issuer) DefaultClaims() Claims {
	now := time.Now()
	return Claims{
		"iss":       is.URL,
		"sub":       "audit-client",
		"client_id": "audit-client",
		"aud":       []string{"coffeebuddy-audit"},
		"scp":       []string{"audit:read"},
		"iat":       now.Unix(),
		"nbf":       now.Unix(),
		"exp":       now.Add(5 * time.Minute).Unix(),
		"jti":       fmt.Sprintf("jti-%d", now.UnixNano()),
	}
}

// Token signs the default claims, changed by edit (nil values delete), with
// the issuer's RS256 key.
func (is *Issuer) Token(t testing.TB, edit Claims) string {
	t.Helper()
	return is.TokenWith(t, "RS256", edit)
}

// TokenWith is Token signed with the issuer's key for alg (RS256 or ES256).
func (is *Issuer) TokenWith(t testing.TB, alg string, edit Claims) string {
	t.Helper()
	is.mu.Lock()
	var key jose.JSONWebKey
	for _, k := range is.keys {
		if k.Algorithm == alg {
			key = k
		}
	}
	is.mu.Unlock()
	if key.Key == nil {
		t.Fatalf("oidctest: no %s key", alg)
	}
	return Sign(t, key, is.claims(edit))
}

// ForeignToken is signed by a key the issuer does not publish, with the
// given kid ("" for none).
func (is *Issuer) ForeignToken(t testing.TB, kid string, edit Claims) string {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return Sign(t, jose.JSONWebKey{Key: k, KeyID: kid, Algorithm: "RS256"}, is.claims(edit))
}

// UnsignedToken is an "alg": "none" token with the given claims.
func (is *Issuer) UnsignedToken(t testing.TB, edit Claims) string {
	t.Helper()
	return compact(t, map[string]any{"alg": "none", "typ": "JWT"}, is.claims(edit)) + "."
}

// HMACToken is signed with HS256 using the issuer's published RSA public
// key (its DER bytes) as the HMAC secret: the classic algorithm-confusion
// forgery a verifier must refuse.
func (is *Issuer) HMACToken(t testing.TB, edit Claims) string {
	t.Helper()
	is.mu.Lock()
	pub := is.keys[0].Public()
	is.mu.Unlock()
	b, err := json.Marshal(pub)
	if err != nil {
		t.Fatal(err)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: b}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", pub.KeyID))
	if err != nil {
		t.Fatal(err)
	}
	return sign(t, s, is.claims(edit))
}

// Tamper returns tok with its payload replaced by claims, keeping the
// original header and signature (a bad signature).
func (is *Issuer) Tamper(t testing.TB, tok string, edit Claims) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("oidctest: token has %d parts", len(parts))
	}
	pb, err := json.Marshal(is.claims(edit))
	if err != nil {
		t.Fatal(err)
	}
	return parts[0] + "." + base64.RawURLEncoding.EncodeToString(pb) + "." + parts[2]
}

func (is *Issuer) claims(edit Claims) Claims {
	c := is.DefaultClaims()
	for k, v := range edit {
		if v == nil {
			delete(c, k)
			continue
		}
		c[k] = v
	}
	return c
}

// Sign signs claims with key (its Algorithm, and its KeyID as kid).
func Sign(t testing.TB, key jose.JSONWebKey, claims Claims) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(key.Algorithm), Key: key}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	return sign(t, s, claims)
}

func sign(t testing.TB, s jose.Signer, claims Claims) string {
	t.Helper()
	b, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := s.Sign(b)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func compact(t testing.TB, header, claims map[string]any) string {
	t.Helper()
	hb, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	cb, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(hb) + "." + base64.RawURLEncoding.EncodeToString(cb)
}
