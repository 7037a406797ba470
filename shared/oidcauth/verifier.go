package oidcauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

// Principal is who a verified token speaks for.
type Principal struct {
	Subject  string    // sub: a user, or for client-credentials tokens the client
	ClientID string    // client_id (Hydra), else azp
	Scopes   []string  // scp (array, Hydra) and scope (space-separated), merged
	Issuer   string    // iss
	Expiry   time.Time // exp
}

// Who names the principal for logs and the access audit: the subject, and
// the client when it differs.
func (p Principal) Who() string {
	if p.ClientID != "" && p.ClientID != p.Subject {
		return p.Subject + " (client " + p.ClientID + ")"
	}
	return p.Subject
}

// Error is a refused request, shaped for an RFC 6750 answer.
type Error struct {
	Status int // 400, 401, 403 or 503
	// Code is RFC 6750's error code: invalid_request, invalid_token,
	// insufficient_scope; empty for a request without credentials (RFC 6750
	// §3.1: then the challenge carries no error) and for 503s.
	Code string
	// Reason is a short fixed label for metrics and logs: missing,
	// malformed, invalid, expired, insufficient_scope, not_configured,
	// not_ready.
	Reason string
	// Description is safe to show the caller; it never quotes the token.
	Description string
	scope       string
	realm       string
}

func (e *Error) Error() string {
	return fmt.Sprintf("oidcauth: %s: %s", e.Reason, e.Description)
}

// Challenge is the WWW-Authenticate header value for e, or "" when none
// belongs (503).
func (e *Error) Challenge() string {
	if e.Status != http.StatusUnauthorized && e.Status != http.StatusForbidden && e.Status != http.StatusBadRequest {
		return ""
	}
	params := []string{fmt.Sprintf("realm=%q", e.realm)}
	if e.Code != "" {
		params = append(params, fmt.Sprintf("error=%q", e.Code))
		params = append(params, fmt.Sprintf("error_description=%q", e.Description))
	}
	if e.scope != "" {
		params = append(params, fmt.Sprintf("scope=%q", e.scope))
	}
	return "Bearer " + strings.Join(params, ", ")
}

// ErrNotReady is wrapped by the readiness error until the issuer's
// discovery document has been fetched.
var ErrNotReady = errors.New("oidcauth: issuer discovery has not succeeded yet")

// Verifier checks bearer tokens against one issuer. Discovery runs in the
// background (Start) and is retried until it succeeds: the process starts
// and serves health at once, and is not ready (Ready) until then.
type Verifier struct {
	cfg    Config
	log    *slog.Logger
	client *http.Client
	now    func() time.Time

	mu       sync.RWMutex
	verifier *oidc.IDTokenVerifier // nil until discovery succeeded
	lastErr  error
}

// Option tunes a Verifier (tests).
type Option func(*Verifier)

// WithHTTPClient sets the client for discovery and JWKS fetches.
func WithHTTPClient(c *http.Client) Option { return func(v *Verifier) { v.client = c } }

// WithClock sets the clock for exp/nbf checks.
func WithClock(now func() time.Time) Option { return func(v *Verifier) { v.now = now } }

// New returns a verifier for cfg; call Start to begin discovery. A Config
// that is not Enabled gives a verifier that is ready and refuses every
// request with 503 (fail closed).
func New(cfg Config, log *slog.Logger, opts ...Option) (*Verifier, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("oidcauth: %w", err)
	}
	if cfg.Realm == "" {
		cfg.Realm = DefaultRealm
	}
	v := &Verifier{cfg: cfg, log: log, now: time.Now,
		// Bounded: a hung issuer must not hold a request (JWKS refetch on an
		// unknown kid happens on the request path) or a discovery attempt.
		client: &http.Client{Timeout: 10 * time.Second},
	}
	for _, o := range opts {
		o(v)
	}
	return v, nil
}

// Discovery retry bounds.
const (
	firstRetry = 250 * time.Millisecond
	maxRetry   = 30 * time.Second
)

// Start fetches the issuer's discovery document in the background, retrying
// with backoff until it succeeds or ctx ends. It returns at once.
func (v *Verifier) Start(ctx context.Context) {
	if !v.cfg.Enabled() {
		v.log.Warn("OIDC is not configured (OIDC_ISSUER_URL unset): every API request is refused with 503")
		return
	}
	go func() {
		wait := firstRetry
		for attempt := 1; ctx.Err() == nil; attempt++ {
			err := v.discover(ctx)
			if err == nil {
				v.log.Info("OIDC issuer discovered", "issuer", v.cfg.IssuerURL, "attempts", attempt)
				return
			}
			v.mu.Lock()
			v.lastErr = err
			v.mu.Unlock()
			v.log.Warn("OIDC issuer discovery failed; retrying", "issuer", v.cfg.IssuerURL, "attempt", attempt, "retry_in", wait.String(), "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(wait):
			}
			wait = min(2*wait, maxRetry)
		}
	}()
}

func (v *Verifier) discover(ctx context.Context) error {
	actx, cancel := context.WithTimeout(ctx, v.client.Timeout)
	defer cancel()
	// The client travels in the context: go-oidc keeps it for the key set's
	// later fetches, not the context's deadline.
	p, err := oidc.NewProvider(oidc.ClientContext(actx, v.client), v.cfg.IssuerURL)
	if err != nil {
		return err
	}
	ov := p.Verifier(&oidc.Config{
		ClientID:          v.cfg.Audience,
		SkipClientIDCheck: v.cfg.SkipAudienceCheck,
		// Pinned, whatever the discovery document advertises.
		SupportedSigningAlgs: v.cfg.Algorithms,
		Now:                  v.now,
	})
	v.mu.Lock()
	v.verifier, v.lastErr = ov, nil
	v.mu.Unlock()
	return nil
}

// Ready returns nil once tokens can be verified (or OIDC is not configured,
// in which case requests are refused with 503 but the process is healthy).
func (v *Verifier) Ready(context.Context) error {
	if !v.cfg.Enabled() {
		return nil
	}
	v.mu.RLock()
	defer v.mu.RUnlock()
	if v.verifier != nil {
		return nil
	}
	if v.lastErr != nil {
		return fmt.Errorf("%w: %v", ErrNotReady, v.lastErr)
	}
	return ErrNotReady
}

// Authenticate reads the bearer token of r and verifies it: signature by a
// key of the issuer's JWKS with a pinned algorithm, iss, aud, exp and nbf,
// and the required scope. A refusal is an *Error.
func (v *Verifier) Authenticate(r *http.Request) (Principal, error) {
	if !v.cfg.Enabled() {
		return Principal{}, v.refuse(http.StatusServiceUnavailable, "", "not_configured", "token verification is not configured")
	}
	v.mu.RLock()
	ov := v.verifier
	v.mu.RUnlock()
	if ov == nil {
		return Principal{}, v.refuse(http.StatusServiceUnavailable, "", "not_ready", "the token issuer has not been reached yet")
	}
	raw, rerr := bearer(r)
	if rerr != nil {
		rerr.realm = v.cfg.Realm
		return Principal{}, rerr
	}
	tok, err := ov.Verify(r.Context(), raw)
	if err != nil {
		var exp *oidc.TokenExpiredError
		if errors.As(err, &exp) {
			return Principal{}, v.refuse(http.StatusUnauthorized, "invalid_token", "expired", "the token has expired")
		}
		v.log.Info("token refused", "reason", err.Error()) // go-oidc's reasons never include the token
		return Principal{}, v.refuse(http.StatusUnauthorized, "invalid_token", "invalid", "the token is not valid for this API")
	}
	var c struct {
		ClientID string          `json:"client_id"`
		AZP      string          `json:"azp"`
		Scp      json.RawMessage `json:"scp"`
		Scope    string          `json:"scope"`
	}
	if err := tok.Claims(&c); err != nil {
		return Principal{}, v.refuse(http.StatusUnauthorized, "invalid_token", "invalid", "the token's claims cannot be read")
	}
	scopes, ok := scopes(c.Scp, c.Scope)
	if !ok {
		return Principal{}, v.refuse(http.StatusUnauthorized, "invalid_token", "invalid", "the token's scp claim is neither a list of strings nor a string")
	}
	p := Principal{Subject: tok.Subject, ClientID: c.ClientID, Scopes: scopes, Issuer: tok.Issuer, Expiry: tok.Expiry}
	if p.ClientID == "" {
		p.ClientID = c.AZP
	}
	if p.Subject == "" {
		return Principal{}, v.refuse(http.StatusUnauthorized, "invalid_token", "invalid", "the token has no subject")
	}
	if !slices.Contains(p.Scopes, v.cfg.RequiredScope) {
		e := v.refuse(http.StatusForbidden, "insufficient_scope", "insufficient_scope", "the token does not grant scope "+v.cfg.RequiredScope)
		e.scope = v.cfg.RequiredScope
		return p, e
	}
	return p, nil
}

func (v *Verifier) refuse(status int, code, reason, desc string) *Error {
	return &Error{Status: status, Code: code, Reason: reason, Description: desc, realm: v.cfg.Realm}
}

// bearer extracts the token of an "Authorization: Bearer <token>" header
// (RFC 6750 §2.1). No header, or another scheme, is a request without
// credentials (401 with a bare challenge); a broken Bearer header is
// invalid_request (400).
func bearer(r *http.Request) (string, *Error) {
	hs := r.Header.Values("Authorization")
	if len(hs) == 0 {
		return "", &Error{Status: http.StatusUnauthorized, Reason: "missing", Description: "a bearer token is required"}
	}
	if len(hs) > 1 {
		return "", &Error{Status: http.StatusBadRequest, Code: "invalid_request", Reason: "malformed", Description: "more than one Authorization header"}
	}
	scheme, tok, _ := strings.Cut(strings.TrimSpace(hs[0]), " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", &Error{Status: http.StatusUnauthorized, Reason: "missing", Description: "a bearer token is required"}
	}
	tok = strings.TrimSpace(tok)
	if tok == "" || strings.ContainsAny(tok, " \t") {
		return "", &Error{Status: http.StatusBadRequest, Code: "invalid_request", Reason: "malformed", Description: "the Authorization header is not \"Bearer <token>\""}
	}
	return tok, nil
}

// scopes merges Hydra's scp (a JSON array; a string is tolerated) and the
// RFC 8693/9068 scope claim (space-separated).
func scopes(scp json.RawMessage, scope string) ([]string, bool) {
	var out []string
	if len(scp) > 0 && string(scp) != "null" {
		var list []string
		if err := json.Unmarshal(scp, &list); err != nil {
			var s string
			if err := json.Unmarshal(scp, &s); err != nil {
				return nil, false
			}
			list = strings.Fields(s)
		}
		out = append(out, list...)
	}
	out = append(out, strings.Fields(scope)...)
	return out, true
}
