package validate

import (
	"net/url"
	"strings"
	"testing"
)

// TestConfigMapDatabaseURLs checks the ConfigMap the chart renders for
// production (default values and values-production.yaml): every database
// URL verifies the server (sslmode=verify-full: TLS, the CA chain and the
// host name), carries no password (Vault's pgpass file does) and logs in as
// the role its key is for (docs/adr/0015-secrets-and-tls.md).
func TestConfigMapDatabaseURLs(t *testing.T) {
	roles := map[string]string{
		"DATABASE_URL":          "coffeebuddy_app",
		"DATABASE_URL_READONLY": "coffeebuddy_readonly",
		"DATABASE_URL_AUDIT":    "coffeebuddy_audit",
	}
	for _, c := range renderCases {
		t.Run(c.name, func(t *testing.T) {
			cm := configMaps(render(t, c))["coffeebuddy/coffeebuddy-config"]
			if cm == nil {
				t.Fatal("no ConfigMap coffeebuddy/coffeebuddy-config")
			}
			for key, role := range roles {
				v, ok := cm.Data[key]
				if !ok {
					t.Errorf("ConfigMap has no %s", key)
					continue
				}
				u, err := url.Parse(v)
				if err != nil {
					t.Errorf("%s: %v", key, err)
					continue
				}
				if got := u.Query().Get("sslmode"); got != "verify-full" {
					t.Errorf("%s: sslmode=%q, want verify-full", key, got)
				}
				if _, has := u.User.Password(); has || u.Query().Has("password") {
					t.Errorf("%s carries a password; it comes from PGPASSFILE", key)
				}
				if u.User.Username() != role {
					t.Errorf("%s logs in as %q, want %s", key, u.User.Username(), role)
				}
			}
			for key := range cm.Data {
				if strings.HasPrefix(key, "DATABASE_URL") && roles[key] == "" {
					t.Errorf("%s: a database URL this test does not know; add its role", key)
				}
			}
		})
	}
}
