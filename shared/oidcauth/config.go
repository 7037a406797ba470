// Package oidcauth verifies OAuth 2.0 bearer tokens (JWT access tokens from
// an OpenID Connect issuer such as Ory Hydra) for HTTP functions that sit
// behind Kong and check the token again themselves. Only functions that
// serve such an API import it; the shared runtime does not, so the others
// do not link go-oidc.
package oidcauth

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// DefaultScope is the scope required when OIDC_REQUIRED_SCOPE is unset.
const DefaultScope = "audit:read"

// DefaultRealm names the protected resource in WWW-Authenticate challenges.
const DefaultRealm = "coffeebuddy"

// DefaultAlgorithms are the only signature algorithms accepted: pinned, so
// neither the token's header nor the issuer's discovery document can bring
// in "none", HMAC (alg confusion with the public key) or anything weaker.
var DefaultAlgorithms = []string{"RS256", "ES256"}

// Config is the verifier's configuration, read from the environment:
//
//	OIDC_ISSUER_URL            the issuer, exactly as it appears in tokens' iss
//	                           (Hydra's URLS_SELF_ISSUER, trailing slash and all);
//	                           empty: OIDC is not configured and every request
//	                           is refused with 503
//	OIDC_AUDIENCE              a value the token's aud must contain
//	OIDC_SKIP_AUDIENCE_CHECK   "true" to accept tokens whatever their aud (Hydra
//	                           client-credentials tokens carry none unless the
//	                           client asks for an audience); required when
//	                           OIDC_AUDIENCE is empty, refused when it is set
//	OIDC_REQUIRED_SCOPE        the scope a token must grant (default audit:read)
type Config struct {
	IssuerURL         string
	Audience          string
	SkipAudienceCheck bool
	RequiredScope     string
	Algorithms        []string
	Realm             string
}

// Enabled reports whether an issuer is configured.
func (c Config) Enabled() bool { return c.IssuerURL != "" }

// ConfigFromEnv reads Config through getenv and reports every problem.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	c := Config{
		IssuerURL:     strings.TrimSpace(getenv("OIDC_ISSUER_URL")),
		Audience:      strings.TrimSpace(getenv("OIDC_AUDIENCE")),
		RequiredScope: strings.TrimSpace(getenv("OIDC_REQUIRED_SCOPE")),
		Algorithms:    DefaultAlgorithms,
		Realm:         DefaultRealm,
	}
	if c.RequiredScope == "" {
		c.RequiredScope = DefaultScope
	}
	var errs []error
	if s := strings.TrimSpace(getenv("OIDC_SKIP_AUDIENCE_CHECK")); s != "" {
		b, err := strconv.ParseBool(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("OIDC_SKIP_AUDIENCE_CHECK: %q is not true or false", s))
		}
		c.SkipAudienceCheck = b
	}
	if err := c.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, fmt.Errorf("oidcauth: %w", err)
	}
	return c, nil
}

// Validate checks a Config; an empty IssuerURL (not configured) is valid.
func (c Config) Validate() error {
	if !c.Enabled() {
		return nil
	}
	var errs []error
	u, err := url.Parse(c.IssuerURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		errs = append(errs, fmt.Errorf("OIDC_ISSUER_URL: %q is not an http(s) URL", c.IssuerURL))
	}
	switch {
	case c.Audience == "" && !c.SkipAudienceCheck:
		errs = append(errs, errors.New("OIDC_AUDIENCE is required (or OIDC_SKIP_AUDIENCE_CHECK=true to accept tokens for any audience)"))
	case c.Audience != "" && c.SkipAudienceCheck:
		errs = append(errs, errors.New("OIDC_AUDIENCE and OIDC_SKIP_AUDIENCE_CHECK=true contradict each other; set one"))
	}
	if c.RequiredScope == "" || strings.ContainsAny(c.RequiredScope, " \t\"\\") {
		errs = append(errs, fmt.Errorf("OIDC_REQUIRED_SCOPE: %q is not a single scope token", c.RequiredScope))
	}
	if len(c.Algorithms) == 0 {
		errs = append(errs, errors.New("no signature algorithms"))
	}
	return errors.Join(errs...)
}
