package validate

// Kong (deploy/kong): every route leads to a Knative Service of deploy/knative;
// each lint rule catches the mistake it is written for; the env placeholders
// render into a usable key; the Admin API is reachable only by the decK Job.
// `make test` also runs `deck file validate` and `deck file lint` on the real file
// (.ci/kong-check); the decK binary comes from .ci/ensure-deck.

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"
	"sigs.k8s.io/yaml"
)

const (
	kongFile    = "../kong/kong.yaml"
	kongRuleset = "../kong/lint-ruleset.yaml"
)

// kongConfig is the part of a decK file the tests read.
type kongConfig struct {
	Services []struct {
		Name     string `json:"name"`
		Protocol string `json:"protocol"`
		Host     string `json:"host"`
		Port     int    `json:"port"`
		URL      string `json:"url"`
		Routes   []struct {
			Name  string   `json:"name"`
			Paths []string `json:"paths"`
		} `json:"routes"`
	} `json:"services"`
}

func readKong(t *testing.T) kongConfig {
	t.Helper()
	b, err := os.ReadFile(kongFile)
	if err != nil {
		t.Fatal(err)
	}
	var k kongConfig
	if err := yaml.Unmarshal(b, &k); err != nil {
		t.Fatalf("%s: %v", kongFile, err)
	}
	if len(k.Services) == 0 {
		t.Fatalf("%s: no services", kongFile)
	}
	return k
}

// clusterLocalRE is a Knative Service's cluster-local host.
var clusterLocalRE = regexp.MustCompile(`^([a-z0-9]([-a-z0-9]*[a-z0-9])?)\.([a-z0-9]([-a-z0-9]*[a-z0-9])?)\.svc\.cluster\.local$`)

// TestKongRoutesReachKnativeServices: every Kong service (hence every route)
// points at a Knative Service defined in deploy/knative, which is
// cluster-local (reachable only through Kong) and listens where Kong sends.
func TestKongRoutesReachKnativeServices(t *testing.T) {
	k := readKong(t)
	files, err := filepath.Glob("../knative/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no Knative Services under deploy/knative (%v)", err)
	}
	type found struct {
		file string
		svc  *servingv1.Service
	}
	knative := map[string]found{} // namespace/name
	for _, f := range files {
		docs, err := DecodeFile(f)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		for _, d := range docs {
			if s, ok := d.Object.(*servingv1.Service); ok {
				knative[s.Namespace+"/"+s.Name] = found{f, s}
			}
		}
	}
	for _, ks := range k.Services {
		t.Run(ks.Name, func(t *testing.T) {
			if ks.URL != "" || ks.Protocol != "http" || ks.Port != 80 {
				t.Fatalf("Kong service %s: want protocol http, host, port 80 and no url (Knative's cluster-local gateway); got protocol %q port %d url %q",
					ks.Name, ks.Protocol, ks.Port, ks.URL)
			}
			m := clusterLocalRE.FindStringSubmatch(ks.Host)
			if m == nil {
				t.Fatalf("Kong service %s: host %q is not <service>.<namespace>.svc.cluster.local", ks.Name, ks.Host)
			}
			name, ns := m[1], m[3]
			want := filepath.Join("deploy", "knative", "service-"+name+".yaml")
			f, ok := knative[ns+"/"+name]
			if !ok {
				t.Fatalf("Kong service %s routes %v to %s, but no Knative Service %s/%s is defined in deploy/knative (expected in %s)",
					ks.Name, routePaths(ks.Routes), ks.Host, ns, name, want)
			}
			if filepath.Base(f.file) != "service-"+name+".yaml" {
				t.Errorf("Knative Service %s/%s is in %s, want %s (one file per function)", ns, name, f.file, want)
			}
			if v := f.svc.Labels["networking.knative.dev/visibility"]; v != "cluster-local" {
				t.Errorf("%s: Knative Service %s is behind Kong but not cluster-local (visibility %q): it would be reachable around Kong", f.file, name, v)
			}
			if c := f.svc.Spec.Template.Spec.Containers; len(c) != 1 || len(c[0].Ports) > 1 || (len(c[0].Ports) == 1 && c[0].Ports[0].Name != "http1" && c[0].Ports[0].Name != "") {
				t.Errorf("%s: want one container serving plain HTTP/1 (port name http1): Kong speaks http to Knative's gateway", f.file)
			}
		})
	}
}

func routePaths(rs []struct {
	Name  string   `json:"name"`
	Paths []string `json:"paths"`
}) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Paths...)
	}
	return out
}

// deckBin is decK as .ci/ensure-deck builds it (make test runs that first).
func deckBin(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("DECK_BIN")
	if bin == "" {
		bin = filepath.Join("..", "..", ".tmp", "bin", "deck")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("decK not found at %s: run `bash .ci/ensure-deck` (make test does) or set DECK_BIN", bin)
	}
	return bin
}

// deck runs decK offline (no analytics, no update check) with env added.
func deck(t *testing.T, env []string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(deckBin(t), args...)
	cmd.Env = append(append(os.Environ(), "DECK_ANALYTICS=off", "DECK_SUPPRESS_UPDATE_CHECK=true"), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

type lintReport struct {
	Results []struct {
		Message  string `json:"Message"`
		Severity string `json:"Severity"`
		Line     int    `json:"Line"`
	} `json:"results"`
}

// lint runs `deck file lint` on doc (the decK file as a generic tree) with
// only the named rule and returns the messages of its violations.
//
// One rule per run: decK v1.64.0 lints rules concurrently, and its YAML
// library (go-yaml v4 rc.5) rewrites the tags of the nodes it marshals in
// place, so rules checking the same nodes race (seen: one crash in about
// 300 runs). A rule alone is deterministic. .ci/kong-check does the same.
func lint(t *testing.T, doc map[string]any, rule string) []string {
	t.Helper()
	b, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	f := filepath.Join(dir, "kong.yaml")
	if err := os.WriteFile(f, b, 0o600); err != nil {
		t.Fatal(err)
	}
	rs := filepath.Join(dir, "ruleset.yaml")
	if err := os.WriteFile(rs, oneRule(t, rule), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := deck(t, nil, "file", "lint", "-s", f, "--format", "json", rs)
	var rep lintReport
	if jerr := json.Unmarshal([]byte(out), &rep); jerr != nil {
		t.Fatalf("deck file lint: %v (%v): %s", jerr, err, out)
	}
	var msgs []string
	for _, r := range rep.Results {
		msgs = append(msgs, r.Message)
	}
	// decK exits non-zero exactly when there are error-level results.
	if (len(msgs) > 0) != (err != nil) {
		t.Fatalf("deck file lint exit %v with %d results: %s", err, len(msgs), out)
	}
	return msgs
}

// kongTree is the decK file as a generic tree, for mutating.
func kongTree(t *testing.T) map[string]any {
	t.Helper()
	b, err := os.ReadFile(kongFile)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

// Tree helpers: they fail the test when the file no longer has the shape a
// mutation expects, rather than mutate nothing.
func service(t *testing.T, doc map[string]any, name string) map[string]any {
	t.Helper()
	for _, s := range doc["services"].([]any) {
		if s := s.(map[string]any); s["name"] == name {
			return s
		}
	}
	t.Fatalf("no service %s in %s", name, kongFile)
	return nil
}

func route(t *testing.T, doc map[string]any, svc, name string) map[string]any {
	t.Helper()
	for _, r := range service(t, doc, svc)["routes"].([]any) {
		if r := r.(map[string]any); r["name"] == name {
			return r
		}
	}
	t.Fatalf("no route %s on service %s", name, svc)
	return nil
}

func plugin(t *testing.T, owner map[string]any, name string) map[string]any {
	t.Helper()
	for _, p := range owner["plugins"].([]any) {
		if p := p.(map[string]any); p["name"] == name {
			return p
		}
	}
	t.Fatalf("no plugin %s on %v", name, owner["name"])
	return nil
}

func config(t *testing.T, owner map[string]any, pluginName string) map[string]any {
	t.Helper()
	return plugin(t, owner, pluginName)["config"].(map[string]any)
}

func dropPlugin(t *testing.T, owner map[string]any, name string) {
	t.Helper()
	plugin(t, owner, name) // must be there
	owner["plugins"] = slices.DeleteFunc(owner["plugins"].([]any), func(p any) bool { return p.(map[string]any)["name"] == name })
}

func addPlugin(owner map[string]any, p map[string]any) {
	ps, _ := owner["plugins"].([]any)
	owner["plugins"] = append(ps, p)
}

func jwtSecret(t *testing.T, doc map[string]any) map[string]any {
	t.Helper()
	c := doc["consumers"].([]any)[0].(map[string]any)
	return c["jwt_secrets"].([]any)[0].(map[string]any)
}

// TestKongLintRulesCatchViolations breaks the real file one way at a time and
// checks the rule written for that mistake reports it. Every rule of the
// ruleset must appear here.
func TestKongLintRulesCatchViolations(t *testing.T) {
	rules := readRuleset(t)
	for name := range rules {
		if msgs := lint(t, kongTree(t), name); len(msgs) != 0 {
			t.Fatalf("the real file breaks rule %s: %q", name, msgs)
		}
	}
	tests := []struct {
		rule   string
		name   string
		mutate func(t *testing.T, doc map[string]any)
	}{
		{"coffeebuddy-select-tags", "no select_tags", func(t *testing.T, d map[string]any) { delete(d, "_info") }},
		{"coffeebuddy-select-tags", "other tags", func(t *testing.T, d map[string]any) {
			d["_info"] = map[string]any{"select_tags": []any{"someone-else"}}
		}},
		{"coffeebuddy-routes-under-services", "a top-level route", func(t *testing.T, d map[string]any) {
			d["routes"] = []any{map[string]any{"name": "sneaky", "paths": []any{"/admin"}, "service": map[string]any{"name": "slack-ingress"}}}
		}},
		{"coffeebuddy-plugins-nested", "a top-level plugin attached to a route", func(t *testing.T, d map[string]any) {
			d["plugins"] = append(d["plugins"].([]any), map[string]any{"name": "rate-limiting", "route": "audit", "config": map[string]any{"minute": 100000}})
		}},
		{"coffeebuddy-no-global-auth", "a global key-auth", func(t *testing.T, d map[string]any) {
			d["plugins"] = append(d["plugins"].([]any), map[string]any{"name": "key-auth"})
		}},
		{"coffeebuddy-consumers-plain", "a consumer-level rate limit", func(t *testing.T, d map[string]any) {
			addPlugin(d["consumers"].([]any)[0].(map[string]any), map[string]any{"name": "rate-limiting", "config": map[string]any{"minute": 100000}})
		}},
		{"coffeebuddy-consumers-plain", "a key-auth credential", func(t *testing.T, d map[string]any) {
			d["consumers"].([]any)[0].(map[string]any)["keyauth_credentials"] = []any{map[string]any{"key": `${{ env "DECK_X" }}`}}
		}},
		{"coffeebuddy-services-in-cluster", "proxying Kong's own Admin API", func(t *testing.T, d map[string]any) {
			s := service(t, d, "health")
			s["host"], s["port"] = "localhost", 8001
		}},
		{"coffeebuddy-services-in-cluster", "a url instead of host", func(t *testing.T, d map[string]any) {
			s := service(t, d, "audit-api")
			delete(s, "host")
			delete(s, "port")
			delete(s, "protocol")
			s["url"] = "http://audit-api.coffeebuddy.svc.cluster.local"
		}},
		{"coffeebuddy-services-in-cluster", "another namespace", func(t *testing.T, d map[string]any) {
			service(t, d, "audit-api")["host"] = "audit-api.other.svc.cluster.local"
		}},
		{"coffeebuddy-required-routes", "no interactions route", func(t *testing.T, d map[string]any) {
			s := service(t, d, "slack-ingress")
			s["routes"] = slices.DeleteFunc(s["routes"].([]any), func(r any) bool { return r.(map[string]any)["name"] == "slack-interactions" })
		}},
		{"coffeebuddy-required-routes", "the audit path changed", func(t *testing.T, d map[string]any) {
			route(t, d, "audit-api", "audit")["paths"] = []any{"~/api/v2/audit$"}
		}},
		{"coffeebuddy-routes-https-only", "plain http allowed", func(t *testing.T, d map[string]any) {
			route(t, d, "slack-ingress", "slack-commands")["protocols"] = []any{"http", "https"}
		}},
		{"coffeebuddy-routes-https-only", "protocols left to Kong's default", func(t *testing.T, d map[string]any) {
			delete(route(t, d, "audit-api", "audit"), "protocols")
		}},
		{"coffeebuddy-routes-exact-paths", "a prefix path", func(t *testing.T, d map[string]any) {
			route(t, d, "health", "health")["paths"] = []any{"/health"}
		}},
		{"coffeebuddy-routes-exact-paths", "an unanchored regex", func(t *testing.T, d map[string]any) {
			route(t, d, "audit-api", "audit")["paths"] = []any{"~/api/v1/audit", "~/api/v1/audit$"}
		}},
		{"coffeebuddy-routes-forward-as-is", "strip_path left to Kong's default (true)", func(t *testing.T, d map[string]any) {
			delete(route(t, d, "slack-ingress", "slack-interactions"), "strip_path")
		}},
		{"coffeebuddy-routes-forward-as-is", "the public Host header sent to Knative", func(t *testing.T, d map[string]any) {
			route(t, d, "audit-api", "audit")["preserve_host"] = true
		}},
		{"coffeebuddy-routes-rate-limited", "health without a limit", func(t *testing.T, d map[string]any) {
			dropPlugin(t, route(t, d, "health", "health"), "rate-limiting")
		}},
		{"coffeebuddy-public-services-paths", "the ingress's /metrics exposed", func(t *testing.T, d map[string]any) {
			s := service(t, d, "slack-ingress")
			r := map[string]any{}
			for k, v := range route(t, d, "slack-ingress", "slack-commands") {
				r[k] = v
			}
			r["name"], r["paths"], r["methods"] = "slack-metrics", []any{"~/metrics$"}, []any{"GET"}
			s["routes"] = append(s["routes"].([]any), r)
		}},
		{"coffeebuddy-public-services-paths", "GET on a Slack route", func(t *testing.T, d map[string]any) {
			route(t, d, "slack-ingress", "slack-commands")["methods"] = []any{"GET", "POST"}
		}},
		{"coffeebuddy-public-routes-no-auth", "jwt on a Slack route", func(t *testing.T, d map[string]any) {
			addPlugin(route(t, d, "slack-ingress", "slack-interactions"), map[string]any{"name": "jwt"})
		}},
		{"coffeebuddy-public-routes-no-auth", "key-auth on /health", func(t *testing.T, d map[string]any) {
			addPlugin(route(t, d, "health", "health"), map[string]any{"name": "key-auth"})
		}},
		{"coffeebuddy-public-routes-limited-by-ip", "Slack limited per service (one flood blocks Slack)", func(t *testing.T, d map[string]any) {
			config(t, route(t, d, "slack-ingress", "slack-commands"), "rate-limiting")["limit_by"] = "service"
		}},
		{"coffeebuddy-private-routes-auth", "the audit route without jwt", func(t *testing.T, d map[string]any) {
			dropPlugin(t, route(t, d, "audit-api", "audit"), "jwt")
		}},
		{"coffeebuddy-private-routes-auth", "a new service without auth", func(t *testing.T, d map[string]any) {
			s := map[string]any{"name": "run-start", "protocol": "http", "host": "run-start.coffeebuddy.svc.cluster.local", "port": 80,
				"routes": []any{map[string]any{"name": "runs", "paths": []any{"~/api/v1/runs$"}, "protocols": []any{"https"},
					"strip_path": false, "preserve_host": false,
					"plugins": []any{map[string]any{"name": "rate-limiting", "config": map[string]any{"minute": 10}}}}}}
			d["services"] = append(d["services"].([]any), s)
		}},
		{"coffeebuddy-audit-jwt", "exp not verified", func(t *testing.T, d map[string]any) {
			config(t, route(t, d, "audit-api", "audit"), "jwt")["claims_to_verify"] = []any{"nbf"}
		}},
		{"coffeebuddy-audit-jwt", "consumers keyed by iss (one limit for all clients)", func(t *testing.T, d map[string]any) {
			config(t, route(t, d, "audit-api", "audit"), "jwt")["key_claim_name"] = "iss"
		}},
		{"coffeebuddy-audit-jwt", "tokens accepted in the query string", func(t *testing.T, d map[string]any) {
			config(t, route(t, d, "audit-api", "audit"), "jwt")["uri_param_names"] = []any{"jwt"}
		}},
		{"coffeebuddy-audit-jwt", "no realm", func(t *testing.T, d map[string]any) {
			delete(config(t, route(t, d, "audit-api", "audit"), "jwt"), "realm")
		}},
		{"coffeebuddy-audit-jwt", "an anonymous fallback", func(t *testing.T, d map[string]any) {
			config(t, route(t, d, "audit-api", "audit"), "jwt")["anonymous"] = "guest"
		}},
		{"coffeebuddy-audit-rate-limit", "1000 a minute", func(t *testing.T, d map[string]any) {
			config(t, route(t, d, "audit-api", "audit"), "rate-limiting")["minute"] = 1000
		}},
		{"coffeebuddy-audit-rate-limit", "limited by ip", func(t *testing.T, d map[string]any) {
			config(t, route(t, d, "audit-api", "audit"), "rate-limiting")["limit_by"] = "ip"
		}},
		{"coffeebuddy-audit-rate-limit", "counted per Kong replica", func(t *testing.T, d map[string]any) {
			config(t, route(t, d, "audit-api", "audit"), "rate-limiting")["policy"] = "local"
		}},
		{"coffeebuddy-prometheus-global", "latency metrics off", func(t *testing.T, d map[string]any) {
			config(t, d, "prometheus")["latency_metrics"] = false
		}},
		{"coffeebuddy-prometheus-global", "no prometheus plugin", func(t *testing.T, d map[string]any) {
			dropPlugin(t, d, "prometheus")
		}},
		{"coffeebuddy-jwt-credentials-from-env", "an HMAC credential", func(t *testing.T, d map[string]any) {
			jwtSecret(t, d)["algorithm"] = "HS256"
		}},
		{"coffeebuddy-jwt-credentials-from-env", "a public key pasted in", func(t *testing.T, d map[string]any) {
			jwtSecret(t, d)["rsa_public_key"] = "-----BEGIN PUBLIC KEY-----\nMIIBIjANBg\n-----END PUBLIC KEY-----\n"
		}},
		{"coffeebuddy-no-plaintext-secrets", "a literal credential secret", func(t *testing.T, d map[string]any) {
			jwtSecret(t, d)["secret"] = "hunter2"
		}},
		{"coffeebuddy-no-plaintext-secrets", "a literal redis password in a plugin", func(t *testing.T, d map[string]any) {
			c := config(t, route(t, d, "audit-api", "audit"), "rate-limiting")
			c["policy"] = "redis"
			c["redis"] = map[string]any{"host": "redis.coffeebuddy.svc.cluster.local", "password": "hunter2"}
		}},
	}
	covered := map[string]bool{}
	for _, tt := range tests {
		covered[tt.rule] = true
		t.Run(tt.rule+"/"+tt.name, func(t *testing.T) {
			want, ok := rules[tt.rule]
			if !ok {
				t.Fatalf("no rule %s in %s", tt.rule, kongRuleset)
			}
			doc := kongTree(t)
			tt.mutate(t, doc)
			msgs := lint(t, doc, tt.rule)
			if !slices.Contains(msgs, want) {
				t.Fatalf("rule %s did not report %q; lint said %q", tt.rule, want, msgs)
			}
		})
	}
	for name := range rules {
		if !covered[name] {
			t.Errorf("rule %s has no case here: add a mutation it must catch", name)
		}
	}
}

// oneRule is the ruleset with only the named rule.
func oneRule(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(kongRuleset)
	if err != nil {
		t.Fatal(err)
	}
	var rs struct {
		Rules map[string]any `json:"rules"`
	}
	if err := yaml.Unmarshal(b, &rs); err != nil {
		t.Fatal(err)
	}
	r, ok := rs.Rules[name]
	if !ok {
		t.Fatalf("no rule %s in %s", name, kongRuleset)
	}
	out, err := yaml.Marshal(map[string]any{"rules": map[string]any{name: r}})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// readRuleset returns each rule's message by rule name.
func readRuleset(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile(kongRuleset)
	if err != nil {
		t.Fatal(err)
	}
	var rs struct {
		Rules map[string]struct {
			Message  string `json:"message"`
			Severity string `json:"severity"`
		} `json:"rules"`
	}
	// Duplicate keys are errors (a second rule of the same name would
	// silently replace the first); unknown fields are fine here.
	if _, err := yaml.YAMLToJSONStrict(b); err != nil {
		t.Fatalf("%s: %v", kongRuleset, err)
	}
	if err := yaml.Unmarshal(b, &rs); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for name, r := range rs.Rules {
		if r.Severity != "error" {
			t.Errorf("rule %s has severity %q: make test fails only on errors", name, r.Severity)
		}
		if r.Message == "" {
			t.Errorf("rule %s has no message", name)
		}
		out[name] = r.Message
	}
	if len(out) == 0 {
		t.Fatalf("%s: no rules", kongRuleset)
	}
	return out
}

// TestKongEnvPlaceholdersRender renders the file as a sync would, with a real
// RSA key in the environment: the PEM must come out intact (the indent in
// the template keeps it a valid YAML block), and nothing may stay
// unsubstituted. A new ${{ env }} in the file fails here until it is added
// below and to deploy/kong/README.md.
func TestKongEnvPlaceholdersRender(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pemKey := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	env := []string{
		"DECK_AUDIT_CLIENT_ID=8b7c0c8e-0d1f-4a57-9f0e-3c2d6f1e2a10",
		"DECK_AUDIT_JWT_UNUSED_SECRET=unused-in-this-test",
		"DECK_HYDRA_ACCESS_TOKEN_PUBLIC_KEY=" + pemKey,
	}
	out, err := deck(t, env, "file", "validate", kongFile)
	if err != nil {
		t.Fatalf("deck file validate with a real key: %v\n%s", err, out)
	}
	f := filepath.Join(t.TempDir(), "rendered.json")
	if out, err := deck(t, env, "file", "render", "--populate-env-vars", "--format", "json", "-o", f, kongFile); err != nil {
		t.Fatalf("deck file render: %v\n%s", err, out)
	}
	b, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b, []byte("${{")) {
		t.Fatalf("rendered file still has placeholders:\n%s", b)
	}
	var rendered struct {
		Consumers []struct {
			CustomID   string `json:"custom_id"`
			JWTSecrets []struct {
				Key          string `json:"key"`
				RSAPublicKey string `json:"rsa_public_key"`
			} `json:"jwt_secrets"`
		} `json:"consumers"`
	}
	if err := json.Unmarshal(b, &rendered); err != nil {
		t.Fatal(err)
	}
	if len(rendered.Consumers) != 1 || len(rendered.Consumers[0].JWTSecrets) != 1 {
		t.Fatalf("rendered consumers: %+v", rendered.Consumers)
	}
	js := rendered.Consumers[0].JWTSecrets[0]
	if js.Key != "8b7c0c8e-0d1f-4a57-9f0e-3c2d6f1e2a10" || rendered.Consumers[0].CustomID != js.Key {
		t.Errorf("credential key %q, custom_id %q: want the client_id", js.Key, rendered.Consumers[0].CustomID)
	}
	blk, rest := pem.Decode([]byte(js.RSAPublicKey))
	if blk == nil || strings.TrimSpace(string(rest)) != "" {
		t.Fatalf("rendered rsa_public_key is not one PEM block:\n%s", js.RSAPublicKey)
	}
	pub, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if !key.PublicKey.Equal(pub) {
		t.Fatal("rendered rsa_public_key is not the key given")
	}

	// Without the environment, validation fails naming what is missing: a
	// sync cannot go out with an empty key by accident.
	out, err = deck(t, []string{"DECK_AUDIT_CLIENT_ID=x", "DECK_AUDIT_JWT_UNUSED_SECRET=x"}, "file", "validate", kongFile)
	if err == nil || !strings.Contains(out, "DECK_HYDRA_ACCESS_TOKEN_PUBLIC_KEY") {
		t.Fatalf("validate without DECK_HYDRA_ACCESS_TOKEN_PUBLIC_KEY: %v\n%s", err, out)
	}
}

// TestKongAdminAPIOnlyForDeck: the NetworkPolicy in front of Kong lets the
// Admin API (8444) be reached by the decK sync Job alone, and no other admin
// listener at all.
func TestKongAdminAPIOnlyForDeck(t *testing.T) {
	b, err := os.ReadFile("../kong/admin-networkpolicy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	j, err := yaml.YAMLToJSONStrict(b)
	if err != nil {
		t.Fatal(err)
	}
	var np networkingv1.NetworkPolicy
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&np); err != nil {
		t.Fatalf("strict decode: %v", err)
	}
	if np.APIVersion != "networking.k8s.io/v1" || np.Kind != "NetworkPolicy" {
		t.Fatalf("%s %s", np.APIVersion, np.Kind)
	}
	if err := checkAdminPolicy(&np); err != nil {
		t.Fatal(err)
	}

	// The check itself can fail.
	bad := []struct {
		name   string
		mutate func(*networkingv1.NetworkPolicy)
	}{
		{"admin open to everyone", func(p *networkingv1.NetworkPolicy) { p.Spec.Ingress[2].From = nil }},
		{"a rule for all ports", func(p *networkingv1.NetworkPolicy) { p.Spec.Ingress[0].Ports = nil }},
		{"admin from a whole namespace", func(p *networkingv1.NetworkPolicy) {
			p.Spec.Ingress[2].From[0].NamespaceSelector = p.Spec.Ingress[1].From[0].NamespaceSelector
			p.Spec.Ingress[2].From[0].PodSelector = nil
		}},
		{"no Ingress policy type", func(p *networkingv1.NetworkPolicy) { p.Spec.PolicyTypes = []networkingv1.PolicyType{"Egress"} }},
		{"the plain admin port opened", func(p *networkingv1.NetworkPolicy) {
			p.Spec.Ingress[0].Ports = append(p.Spec.Ingress[0].Ports, p.Spec.Ingress[0].Ports[0])
			p.Spec.Ingress[0].Ports[2].Port.IntVal = 8001
		}},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			var p networkingv1.NetworkPolicy
			if err := json.Unmarshal(j, &p); err != nil {
				t.Fatal(err)
			}
			tt.mutate(&p)
			if err := checkAdminPolicy(&p); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

// Kong's admin listeners: 8444 (TLS, the one decK uses), 8001 (plain), and
// Kong Manager's 8002/8445.
var adminPorts = map[int32]bool{8444: true, 8001: true, 8002: true, 8445: true}

func checkAdminPolicy(np *networkingv1.NetworkPolicy) error {
	if np.Namespace != "kong" || np.Spec.PodSelector.MatchLabels["app.kubernetes.io/name"] != "kong" {
		return fmt.Errorf("policy must select Kong's pods in namespace kong, selects %v in %q", np.Spec.PodSelector.MatchLabels, np.Namespace)
	}
	if !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) {
		return errors.New("policyTypes lacks Ingress: nothing would be restricted")
	}
	adminRule := false
	for i, r := range np.Spec.Ingress {
		if len(r.Ports) == 0 {
			return fmt.Errorf("ingress rule %d allows every port, the Admin API included", i)
		}
		for _, p := range r.Ports {
			if p.Port == nil || p.EndPort != nil {
				return fmt.Errorf("ingress rule %d: a port range or a missing port could include the Admin API", i)
			}
			port := p.Port.IntVal
			if !adminPorts[port] {
				continue
			}
			if port != 8444 {
				return fmt.Errorf("ingress rule %d opens admin port %d: only 8444 (TLS, for decK) is used", i, port)
			}
			if len(r.From) == 0 {
				return fmt.Errorf("ingress rule %d opens the Admin API to every source", i)
			}
			for _, peer := range r.From {
				if peer.IPBlock != nil || peer.NamespaceSelector != nil || peer.PodSelector == nil ||
					peer.PodSelector.MatchLabels["app.kubernetes.io/name"] != "deck-sync" || len(peer.PodSelector.MatchExpressions) != 0 {
					return fmt.Errorf("ingress rule %d opens the Admin API to %+v: only deck-sync pods in namespace kong may reach it", i, peer)
				}
			}
			adminRule = true
		}
	}
	if !adminRule {
		return errors.New("no rule lets the decK sync Job reach the Admin API on 8444")
	}
	return nil
}
