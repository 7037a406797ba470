package devstack

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/coffeebuddy/coffeebuddy/eventing/devissuer"
	"github.com/coffeebuddy/coffeebuddy/eventing/hydra"
)

// AuditAPIName is the function serving GET /api/v1/audit.
const AuditAPIName = "audit-api"

// AuditPath is audit-api's endpoint.
const AuditPath = "/api/v1/audit"

// OIDC is how the stack's audit-api checks tokens: against a local issuer
// the stack started for this run (Hydra or the dev issuer) with one client
// made for it, or against the issuer OIDC_ISSUER_URL names.
type OIDC struct {
	// Issuer names it for people: "Ory Hydra v2.3.0", "the dev issuer" or
	// "OIDC_ISSUER_URL".
	Issuer    string
	IssuerURL string // exactly audit-api's OIDC_ISSUER_URL
	TokenURL  string // local issuers only
	AdminURL  string // a local Hydra's admin API
	HydraBin  string // a local Hydra's binary
	// ClientID and ClientSecret are the local issuer's client for this run
	// (a random secret, printed by make run's banner); empty otherwise.
	ClientID, ClientSecret string
	Audience               string // OIDC_AUDIENCE; empty with OIDC_SKIP_AUDIENCE_CHECK
	Scope                  string // OIDC_REQUIRED_SCOPE
}

// Local reports whether the stack runs the issuer (and so has a client).
func (o OIDC) Local() bool { return o.ClientID != "" }

// Defaults of the local issuer's client, as in production (README "Audit API").
const (
	localAudience = devissuer.DefaultAudience
	localScope    = devissuer.DefaultScope
)

// startIssuer decides audit-api's token issuer and returns the variables
// that only audit-api gets. With OIDC_ISSUER_URL set it starts nothing:
// the OIDC_* variables pass through as given (ownPassThrough). Otherwise it starts a local
// issuer on loopback (Hydra with Options.HydraBin, else the dev issuer)
// with one client_credentials client allowed the required scope and
// audience, and points audit-api at it. Either way audit-api gets a cursor
// key for the whole run unless one is configured, so that cursors survive
// a restart of the function.
func (s *Stack) startIssuer(ctx context.Context, o Options) ([]string, error) {
	var env []string
	for _, k := range ownPassThrough[AuditAPIName] {
		if v := o.Getenv(k); v != "" {
			env = append(env, k+"="+v)
		}
	}
	if o.Getenv("AUDIT_CURSOR_KEY") == "" && o.Getenv("AUDIT_CURSOR_KEY_FILE") == "" {
		env = append(env, "AUDIT_CURSOR_KEY="+randomHex(32))
	}
	if u := strings.TrimSpace(o.Getenv("OIDC_ISSUER_URL")); u != "" {
		s.OIDC = OIDC{Issuer: "OIDC_ISSUER_URL", IssuerURL: u, Audience: o.Getenv("OIDC_AUDIENCE"), Scope: scopeOf(o.Getenv)}
		return env, nil
	}
	oc := OIDC{Audience: localAudience, Scope: scopeOf(o.Getenv)}
	if a := strings.TrimSpace(o.Getenv("OIDC_AUDIENCE")); a != "" {
		oc.Audience = a
	}
	if o.HydraBin != "" {
		if err := s.startHydra(ctx, o, &oc); err != nil {
			return nil, err
		}
	} else {
		is, err := devissuer.Start(devissuer.Options{
			Addr: o.IssuerAddr, Scopes: []string{oc.Scope}, Audiences: []string{oc.Audience},
			Log: s.log.With("component", "devissuer"),
		})
		if err != nil {
			return nil, fmt.Errorf("devstack: dev issuer: %w", err)
		}
		s.stops = append(s.stops, func() { _ = is.Close() })
		oc.Issuer, oc.IssuerURL, oc.TokenURL = "the dev issuer", is.URL, is.TokenURL
		oc.ClientID, oc.ClientSecret = is.ClientID, is.ClientSecret
	}
	s.OIDC = oc
	// The stack's wiring wins over what passed through: a stray
	// OIDC_SKIP_AUDIENCE_CHECK would contradict the local audience.
	return append(env,
		"OIDC_ISSUER_URL="+oc.IssuerURL,
		"OIDC_AUDIENCE="+oc.Audience,
		"OIDC_SKIP_AUDIENCE_CHECK=false",
		"OIDC_REQUIRED_SCOPE="+oc.Scope,
	), nil
}

func (s *Stack) startHydra(ctx context.Context, o Options, oc *OIDC) error {
	logf, err := os.OpenFile(filepath.Join(s.LogDir, "hydra.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("devstack: %w", err)
	}
	s.stops = append(s.stops, func() { logf.Close() })
	h, err := hydra.Start(ctx, hydra.Options{Bin: o.HydraBin, PublicAddr: o.IssuerAddr, Log: logf})
	if err != nil {
		// No silent fallback to the dev issuer: a Hydra that was asked for
		// and does not start is worth knowing about.
		return fmt.Errorf("devstack: %w (log: %s; without .tmp/bin/hydra and HYDRA_BIN make run uses the dev issuer)", err, logf.Name())
	}
	s.stops = append(s.stops, h.Close)
	c, err := h.CreateClient(ctx, hydra.Client{
		Name: "coffeebuddy make run", Secret: randomHex(24),
		Scope: oc.Scope, Audience: []string{oc.Audience},
	})
	if err != nil {
		return fmt.Errorf("devstack: %w", err)
	}
	v, err := hydra.BinVersion(o.HydraBin)
	if err != nil {
		v = "(version unknown)"
	}
	oc.Issuer, oc.IssuerURL, oc.TokenURL, oc.AdminURL, oc.HydraBin = "Ory Hydra "+v, h.IssuerURL, h.TokenURL, h.AdminURL, o.HydraBin
	oc.ClientID, oc.ClientSecret = c.ID, c.Secret
	return nil
}

func scopeOf(getenv func(string) string) string {
	if s := strings.TrimSpace(getenv("OIDC_REQUIRED_SCOPE")); s != "" {
		return s
	}
	return localScope
}

// AuditCommand is a shell command that fetches a client-credentials token
// from the local issuer and reads the audit trail of day (UTC) through
// audit-api at base: what make run's banner prints. Only sh, curl and sed:
// jq is not everywhere. Empty without a local issuer.
func (o OIDC) AuditCommand(base string, day time.Time) string {
	if !o.Local() {
		return ""
	}
	day = day.UTC()
	q := url.Values{
		"start_date": {day.Format(time.DateOnly)},
		"end_date":   {day.AddDate(0, 0, 1).Format(time.DateOnly)},
	}
	return fmt.Sprintf(`TOKEN=$(curl -s -u %s -d grant_type=client_credentials -d scope=%s -d audience=%s %s | sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p'); curl -s -H "Authorization: Bearer $TOKEN" %s`,
		shellQuote(o.ClientID+":"+o.ClientSecret), shellQuote(o.Scope), shellQuote(o.Audience), shellQuote(o.TokenURL),
		shellQuote(base+AuditPath+"?"+q.Encode()))
}

// shellQuote quotes s for sh when it holds anything but safe characters.
func shellQuote(s string) string {
	safe := s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:/@%+=,") == ""
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails on Linux
	return hex.EncodeToString(b)
}
