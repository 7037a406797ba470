package validate

import (
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// TestConfigMapDatabaseURLs checks the ConfigMap the README documents for
// production (deploy/knative/README.md): every database URL verifies the
// server (sslmode=verify-full: TLS, the CA chain and the host name),
// carries no password (Vault's pgpass file does) and logs in as the role
// its key is for (docs/adr/0015-secrets-and-tls.md).
func TestConfigMapDatabaseURLs(t *testing.T) {
	b, err := os.ReadFile("../knative/README.md")
	if err != nil {
		t.Fatal(err)
	}
	var doc string
	for _, m := range regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(string(b), -1) {
		if strings.Contains(m[1], "kind: ConfigMap") {
			doc = m[1]
		}
	}
	if doc == "" {
		t.Fatal("deploy/knative/README.md has no ConfigMap example")
	}
	var cm struct {
		APIVersion string            `json:"apiVersion"`
		Kind       string            `json:"kind"`
		Metadata   map[string]string `json:"metadata"`
		Data       map[string]string `json:"data"`
	}
	if err := yaml.UnmarshalStrict([]byte(doc), &cm); err != nil {
		t.Fatalf("ConfigMap example: %v", err)
	}
	roles := map[string]string{
		"DATABASE_URL":          "coffeebuddy_app",
		"DATABASE_URL_READONLY": "coffeebuddy_readonly",
		"DATABASE_URL_AUDIT":    "coffeebuddy_audit",
	}
	for key, role := range roles {
		v, ok := cm.Data[key]
		if !ok {
			t.Errorf("ConfigMap example has no %s", key)
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
}
