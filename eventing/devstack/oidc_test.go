package devstack

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// effective is the value of key in env as exec.Cmd applies it: the last.
func effective(env []string, key string) (string, bool) {
	v, ok := "", false
	for _, kv := range env {
		if k, val, found := strings.Cut(kv, "="); found && k == key {
			v, ok = val, true
		}
	}
	return v, ok
}

// TestAuditAPIEnv: what audit-api is given for each configuration: a
// local issuer (the dev issuer here) only without OIDC_ISSUER_URL, the
// OIDC_* variables passed through otherwise, and a cursor key for the run
// unless one is configured.
func TestAuditAPIEnv(t *testing.T) {
	local := "local" // stands for the started issuer's URL
	tests := []struct {
		name  string
		env   map[string]string
		local bool
		want  map[string]string // "" : must be absent; local: the local issuer's URL
	}{
		{"nothing configured: the dev issuer", nil, true, map[string]string{
			"OIDC_ISSUER_URL": local, "OIDC_AUDIENCE": "coffeebuddy-audit", "OIDC_SKIP_AUDIENCE_CHECK": "false",
			"OIDC_REQUIRED_SCOPE": "audit:read", "AUDIT_CURSOR_KEY": "random", "AUDIT_CURSOR_KEY_FILE": ""}},
		{"your own issuer passes through", map[string]string{"OIDC_ISSUER_URL": "https://hydra.example/", "OIDC_AUDIENCE": "aud-x", "OIDC_REQUIRED_SCOPE": "audit:all"}, false, map[string]string{
			"OIDC_ISSUER_URL": "https://hydra.example/", "OIDC_AUDIENCE": "aud-x", "OIDC_REQUIRED_SCOPE": "audit:all",
			"OIDC_SKIP_AUDIENCE_CHECK": "", "AUDIT_CURSOR_KEY": "random"}},
		{"your own issuer, any audience", map[string]string{"OIDC_ISSUER_URL": "https://hydra.example/", "OIDC_SKIP_AUDIENCE_CHECK": "true"}, false, map[string]string{
			"OIDC_ISSUER_URL": "https://hydra.example/", "OIDC_SKIP_AUDIENCE_CHECK": "true", "OIDC_AUDIENCE": ""}},
		{"a cursor key file is kept", map[string]string{"AUDIT_CURSOR_KEY_FILE": "/vault/secrets/cursor"}, true, map[string]string{
			"AUDIT_CURSOR_KEY_FILE": "/vault/secrets/cursor", "AUDIT_CURSOR_KEY": ""}},
		{"local issuer: scope and audience asked for", map[string]string{"OIDC_REQUIRED_SCOPE": "audit:export", "OIDC_AUDIENCE": "mine"}, true, map[string]string{
			"OIDC_REQUIRED_SCOPE": "audit:export", "OIDC_AUDIENCE": "mine"}},
		{"local issuer: a stray skip is overridden", map[string]string{"OIDC_SKIP_AUDIENCE_CHECK": "true"}, true, map[string]string{
			"OIDC_SKIP_AUDIENCE_CHECK": "false", "OIDC_AUDIENCE": "coffeebuddy-audit"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &Stack{log: slog.New(slog.DiscardHandler)}
			defer func() {
				for i := len(s.stops) - 1; i >= 0; i-- {
					s.stops[i]()
				}
			}()
			env, err := s.startIssuer(context.Background(), Options{Getenv: func(k string) string { return tt.env[k] }})
			if err != nil {
				t.Fatal(err)
			}
			if s.OIDC.Local() != tt.local {
				t.Fatalf("OIDC %+v: local = %v, want %v", s.OIDC, s.OIDC.Local(), tt.local)
			}
			if tt.local && (!strings.HasPrefix(s.OIDC.IssuerURL, "http://127.0.0.1:") || s.OIDC.ClientSecret == "" || s.OIDC.TokenURL != s.OIDC.IssuerURL+"oauth2/token") {
				t.Errorf("local issuer %+v: want loopback, a secret, <issuer>oauth2/token", s.OIDC)
			}
			for k, want := range tt.want {
				got, ok := effective(env, k)
				switch want {
				case "":
					if ok {
						t.Errorf("%s=%s, want it unset", k, got)
					}
				case local:
					if got != s.OIDC.IssuerURL {
						t.Errorf("%s=%q, want the local issuer %q", k, got, s.OIDC.IssuerURL)
					}
				case "random":
					if len(got) != 64 {
						t.Errorf("%s=%q, want 32 random bytes in hex", k, got)
					}
				default:
					if got != want {
						t.Errorf("%s=%q, want %q", k, got, want)
					}
				}
			}
		})
	}
}

// TestAuditVariablesStayWithAuditAPI: the cursor key and OIDC settings
// reach audit-api alone, not every function.
func TestAuditVariablesStayWithAuditAPI(t *testing.T) {
	env := map[string]string{"AUDIT_CURSOR_KEY": strings.Repeat("k", 32), "OIDC_ISSUER_URL": "https://hydra.example/", "LOG_LEVEL": "debug"}
	got := functionEnv(Options{Getenv: func(k string) string { return env[k] }}, nil)
	for _, kv := range got {
		if strings.HasPrefix(kv, "AUDIT_") || strings.HasPrefix(kv, "OIDC_") {
			t.Errorf("every function gets %s", kv)
		}
	}
	if v, _ := effective(got, "LOG_LEVEL"); v != "debug" {
		t.Errorf("LOG_LEVEL=%q: the common pass-through broke", v)
	}
}

// TestAuditCommand: the banner's command quotes what the shell would
// split or expand, and names the day's range in UTC.
func TestAuditCommand(t *testing.T) {
	o := OIDC{ClientID: "id", ClientSecret: "it's", Scope: "audit:read", Audience: "a b", TokenURL: "http://127.0.0.1:1/oauth2/token"}
	got := o.AuditCommand("http://127.0.0.1:2", time.Date(2026, 12, 31, 23, 0, 0, 0, time.FixedZone("X", -3600)))
	for _, want := range []string{`-u 'id:it'\''s'`, `-d audience='a b'`, `'http://127.0.0.1:2/api/v1/audit?end_date=2027-01-02&start_date=2027-01-01'`} {
		if !strings.Contains(got, want) {
			t.Errorf("command lacks %s:\n%s", want, got)
		}
	}
	if (OIDC{}).AuditCommand("http://x", time.Now()) != "" {
		t.Error("a command without a local issuer")
	}
}
