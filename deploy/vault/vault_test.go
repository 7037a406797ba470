package vault

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclparse"
	"sigs.k8s.io/yaml"
)

const root = "../.."

func services(t *testing.T) []Service {
	t.Helper()
	s, err := LoadServices(root)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestGeneratedFilesCurrent fails when policies/ or roles/ differ from what
// the Services' annotations give, or hold a file no Service gives.
func TestGeneratedFilesCurrent(t *testing.T) {
	want, err := Generate(services(t))
	if err != nil {
		t.Fatal(err)
	}
	const fix = "run: cd deploy/vault && GOWORK=off go generate"
	for name, b := range want {
		got, err := os.ReadFile(filepath.FromSlash(name))
		if err != nil {
			t.Errorf("%s: %v (%s)", name, err, fix)
			continue
		}
		if !bytes.Equal(got, b) {
			t.Errorf("%s is stale (%s)", name, fix)
		}
	}
	for _, dir := range Generated {
		files, _ := filepath.Glob(filepath.Join(dir, "*"))
		for _, f := range files {
			if _, ok := want[filepath.ToSlash(f)]; !ok {
				t.Errorf("%s: no Service gives it (%s)", f, fix)
			}
		}
	}
	if len(want) == 0 {
		t.Fatal("nothing generated")
	}
}

// policyFile is a Vault policy as HCL.
type policyFile struct {
	Paths []struct {
		Path         string   `hcl:"path,label"`
		Capabilities []string `hcl:"capabilities"`
	} `hcl:"path,block"`
}

func parsePolicy(t *testing.T, file string) policyFile {
	t.Helper()
	f, diags := hclparse.NewParser().ParseHCLFile(file)
	if diags.HasErrors() {
		t.Fatalf("%s: %v", file, diags)
	}
	var p policyFile
	if diags := gohcl.DecodeBody(f.Body, nil, &p); diags.HasErrors() {
		t.Fatalf("%s: %v", file, diags)
	}
	return p
}

// functionPath is a path a function's agent may read: a CoffeeBuddy KV v2
// entry or a CoffeeBuddy database static role's credentials; no globs.
var functionPath = regexp.MustCompile(`^(secret/data/coffeebuddy/[a-z0-9-]+|database/static-creds/coffeebuddy-[a-z]+)$`)

// TestPoliciesGrantExactlyWhatServicesInject parses every policy with
// hashicorp/hcl/v2: read only, and exactly the Service's injected paths,
// neither more (a function reads only what it needs) nor fewer (its agent
// would be refused).
func TestPoliciesGrantExactlyWhatServicesInject(t *testing.T) {
	byName := map[string]Service{}
	for _, s := range services(t) {
		byName[s.Name] = s
	}
	files, _ := filepath.Glob("policies/*.hcl")
	if len(files) == 0 {
		t.Fatal("no policies")
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".hcl")
		s, ok := byName[name]
		if !ok {
			t.Errorf("%s: no Service %s", f, name)
			continue
		}
		var granted []string
		for _, p := range parsePolicy(t, f).Paths {
			if !slices.Equal(p.Capabilities, []string{"read"}) {
				t.Errorf("%s: path %q has capabilities %v, want [read]", f, p.Path, p.Capabilities)
			}
			if !functionPath.MatchString(p.Path) {
				t.Errorf("%s: path %q is not a CoffeeBuddy secret path (or has a glob)", f, p.Path)
			}
			granted = append(granted, p.Path)
		}
		slices.Sort(granted)
		if want := s.Paths(); !slices.Equal(granted, want) {
			t.Errorf("%s grants %v; %s injects %v", f, granted, s.File, want)
		}
	}
	for _, s := range byName {
		if _, err := os.Stat(filepath.Join("policies", s.Name+".hcl")); s.Inject && err != nil {
			t.Errorf("%s injects secrets but has no policy", s.File)
		}
	}
}

// TestOperatorPolicy: the people's policy stays on CoffeeBuddy's paths and
// can neither delete nor administer.
func TestOperatorPolicy(t *testing.T) {
	files, _ := filepath.Glob("operator/*.hcl")
	if len(files) == 0 {
		t.Fatal("no operator policy")
	}
	allowed := map[string]bool{"create": true, "update": true, "read": true}
	for _, f := range files {
		for _, p := range parsePolicy(t, f).Paths {
			if !strings.Contains(p.Path, "coffeebuddy") {
				t.Errorf("%s: path %q outside CoffeeBuddy's", f, p.Path)
			}
			for _, c := range p.Capabilities {
				if !allowed[c] {
					t.Errorf("%s: path %q has capability %q", f, p.Path, c)
				}
			}
		}
	}
}

// TestPolicyParserCatchesMistakes: the HCL check bites on a syntax error
// and on a misspelt attribute.
func TestPolicyParserCatchesMistakes(t *testing.T) {
	for name, src := range map[string]string{
		"unclosed":  "path \"secret/data/coffeebuddy/slack\" {\n  capabilities = [\"read\"]\n",
		"misspelt":  "path \"secret/data/coffeebuddy/slack\" {\n  capability = [\"read\"]\n}\n",
		"no label":  "path {\n  capabilities = [\"read\"]\n}\n",
		"not array": "path \"x\" {\n  capabilities = read\n}\n",
	} {
		f, diags := hclparse.NewParser().ParseHCL([]byte(src), name+".hcl")
		if !diags.HasErrors() {
			var p policyFile
			diags = gohcl.DecodeBody(f.Body, &hcl.EvalContext{}, &p)
		}
		if !diags.HasErrors() {
			t.Errorf("%s: accepted:\n%s", name, src)
		}
	}
}

// needsRE finds a function's declared dependencies in its main.go, as
// deploy/validate does.
var needsRE = regexp.MustCompile(`Needs:\s*function\.Needs\{([^}]*)\}`)

// databaseRole maps the ConfigMap key a Service's DATABASE_URL comes from to
// the database role, hence the Vault static role, it must log in as.
var databaseRole = map[string]string{
	"DATABASE_URL":          "coffeebuddy-app",
	"DATABASE_URL_READONLY": "coffeebuddy-readonly",
	"DATABASE_URL_AUDIT":    "coffeebuddy-audit",
}

// kvFields are the keys the templates may read at each KV v2 path, and
// what writes them (rotate-slack-secrets.sh, apply.sh's hint).
var kvFields = map[string][]string{
	"secret/data/coffeebuddy/slack":     {"bot_token", "signing_secret"},
	"secret/data/coffeebuddy/audit-api": {"cursor_key"},
	"secret/data/coffeebuddy/kong":      {"audit_client_id", "hydra_access_token_public_key", "jwt_unused_secret"},
}

// TestChartPodsReadOnlyWhatTheyNeed: the chart's pods besides the
// functions (every optional part on) each log in to Vault as their own
// identity and read one path: the schema owner's credentials for the
// migration Job, Kong's KV secret for the decK sync, the auth user's
// credentials for PgBouncer; their templates read what they inject.
func TestChartPodsReadOnlyWhatTheyNeed(t *testing.T) {
	want := map[string]string{ // identity → the one path it reads
		"migrate":   "database/static-creds/coffeebuddy-owner",
		"deck-sync": "secret/data/coffeebuddy/kong",
		"pgbouncer": "database/static-creds/coffeebuddy-pgbouncer",
	}
	got := map[string]bool{}
	for _, s := range services(t) {
		if s.Kind == "Service" {
			continue
		}
		got[s.Name] = true
		path, ok := want[s.Name]
		if !ok {
			t.Errorf("%s: a %s logging in as %s, which this test does not know: say what it may read", s.File, s.Kind, PolicyName(s.Name))
			continue
		}
		if !s.Inject || !slices.Equal(s.Paths(), []string{path}) {
			t.Errorf("%s injects %v (agent-inject %v), want only %s", s.File, s.Paths(), s.Inject, path)
		}
		for _, sec := range s.Secrets {
			if !slices.Equal(sec.TemplatePaths, []string{sec.Path}) {
				t.Errorf("%s: secret %s injects %s but its template reads %v", s.File, sec.File, sec.Path, sec.TemplatePaths)
			}
			fields := slices.Clone(sec.TemplateFields)
			slices.Sort(fields)
			if kv, ok := kvFields[sec.Path]; ok {
				if !slices.Equal(fields, kv) {
					t.Errorf("%s: template of %s reads %v, want %v", s.File, sec.File, fields, kv)
				}
			} else if !slices.Equal(fields, []string{"password", "username"}) {
				t.Errorf("%s: template of %s reads %v, want .Data.username and .Data.password", s.File, sec.File, fields)
			}
		}
	}
	for name := range want {
		if !got[name] {
			t.Errorf("no rendered chart pod logs in as %s (make chart renders them into deploy/vault/workloads)", PolicyName(name))
		}
	}
}

// TestServicesReadOnlyWhatTheyNeed checks each Service's Vault annotations
// against its function's code: the database credentials if and only if
// function.Needs has DB (the static role matching its DATABASE_URL), the
// Slack secrets if and only if it has Slack, the cursor key if and only if
// it reads AUDIT_CURSOR_KEY; each *_FILE variable names a file the agent
// renders from the right field; templates read the path they inject; KV
// secrets are re-rendered often enough for the rotation runbook.
func TestServicesReadOnlyWhatTheyNeed(t *testing.T) {
	for _, s := range services(t) {
		if s.Kind != "Service" {
			continue // TestChartPodsReadOnlyWhatTheyNeed
		}
		t.Run(s.Name, func(t *testing.T) {
			src, err := os.ReadFile(filepath.Join(root, "functions", s.Name, "main.go"))
			if err != nil {
				t.Fatalf("%s: %v", s.File, err)
			}
			m := needsRE.FindSubmatch(src)
			if m == nil {
				t.Fatalf("functions/%s/main.go declares no function.Needs", s.Name)
			}
			needs := string(m[1])
			all, _ := filepath.Glob(filepath.Join(root, "functions", s.Name, "*.go"))
			var code strings.Builder
			for _, f := range all {
				if !strings.HasSuffix(f, "_test.go") {
					b, _ := os.ReadFile(f)
					code.Write(b)
				}
			}
			want := map[string]bool{} // path → needed
			if strings.Contains(needs, "DB: true") {
				key := s.Env["DATABASE_URL"].ConfigMapKey
				role, ok := databaseRole[key]
				if !ok {
					t.Fatalf("%s: DATABASE_URL from ConfigMap key %q, want one of %v", s.File, key, databaseRole)
				}
				want["database/static-creds/"+role] = true
			}
			if strings.Contains(needs, "Slack: true") {
				want["secret/data/coffeebuddy/slack"] = true
			}
			if strings.Contains(code.String(), `"AUDIT_CURSOR_KEY"`) {
				want["secret/data/coffeebuddy/audit-api"] = true
			}
			var wantPaths []string
			for p := range want {
				wantPaths = append(wantPaths, p)
			}
			slices.Sort(wantPaths)
			if got := s.Paths(); !slices.Equal(got, wantPaths) {
				t.Errorf("%s injects %v; functions/%s needs %v (Needs{%s})", s.File, got, s.Name, wantPaths, strings.TrimSpace(needs))
			}
			if len(wantPaths) > 0 && !s.Inject {
				t.Errorf("%s: needs Vault secrets but has no agent-inject: \"true\"", s.File)
			}

			files := map[string]Secret{}
			kv := false
			for _, sec := range s.Secrets {
				files["/vault/secrets/"+sec.File] = sec
				if !slices.Equal(sec.TemplatePaths, []string{sec.Path}) {
					t.Errorf("%s: secret %s injects %s but its template reads %v", s.File, sec.File, sec.Path, sec.TemplatePaths)
				}
				fields := slices.Clone(sec.TemplateFields)
				slices.Sort(fields)
				switch {
				case strings.HasPrefix(sec.Path, "database/static-creds/"):
					if !slices.Equal(fields, []string{"password", "username"}) {
						t.Errorf("%s: pgpass template reads %v, want .Data.username and .Data.password", s.File, fields)
					}
				case strings.HasPrefix(sec.Path, "secret/data/"):
					kv = true
					for _, f := range fields {
						if !slices.Contains(kvFields[sec.Path], f) {
							t.Errorf("%s: template of %s reads %s.%s, which nothing writes", s.File, sec.File, sec.Path, f)
						}
					}
				}
			}
			// What the function reads, from where the agent writes it.
			fileVars := map[string]string{ // env var → template field
				"PGPASSFILE":                "username",
				"SLACK_SIGNING_SECRET_FILE": "signing_secret",
				"SLACK_BOT_TOKEN_FILE":      "bot_token",
				"AUDIT_CURSOR_KEY_FILE":     "cursor_key",
			}
			for v, field := range fileVars {
				e, ok := s.Env[v]
				if !ok {
					continue
				}
				sec, ok := files[e.Value]
				if !ok {
					t.Errorf("%s: %s=%s, which the agent does not render", s.File, v, e.Value)
					continue
				}
				if !slices.Contains(sec.TemplateFields, field) {
					t.Errorf("%s: %s=%s is rendered from %v, want %s", s.File, v, e.Value, sec.TemplateFields, field)
				}
			}
			if want["secret/data/coffeebuddy/slack"] && (s.Env["SLACK_SIGNING_SECRET_FILE"].Value == "" || s.Env["SLACK_BOT_TOKEN_FILE"].Value == "") {
				t.Errorf("%s: injects the Slack secrets but does not point SLACK_*_FILE at them", s.File)
			}
			if kv {
				d, err := time.ParseDuration(s.StaticPoll)
				if err != nil || d <= 0 || d > 30*time.Second {
					t.Errorf("%s: %s = %q, want at most 30s: the rotation runbook counts on it", s.File, annStaticPoll, s.StaticPoll)
				}
			}
		})
	}
}

func decodeStrict(t *testing.T, file string, v any) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
}

// TestRolesBindTheServiceAccount decodes every role strictly: bound to the
// Service's own ServiceAccount and namespace, granting its policy alone.
func TestRolesBindTheServiceAccount(t *testing.T) {
	for _, s := range services(t) {
		file := filepath.Join("roles", s.Name+".json")
		if !s.Inject {
			if _, err := os.Stat(file); err == nil {
				t.Errorf("%s: %s uses no Vault but has a role", file, s.File)
			}
			continue
		}
		var r KubernetesRole
		decodeStrict(t, file, &r)
		if !slices.Equal(r.BoundServiceAccountNames, []string{s.ServiceAccount}) || s.ServiceAccount != PolicyName(s.Name) {
			t.Errorf("%s binds %v; %s runs as %q", file, r.BoundServiceAccountNames, s.File, s.ServiceAccount)
		}
		if !slices.Equal(r.BoundServiceAccountNamespaces, []string{s.Namespace}) || s.Namespace == "" {
			t.Errorf("%s binds namespaces %v; %s is in %q", file, r.BoundServiceAccountNamespaces, s.File, s.Namespace)
		}
		if !slices.Equal(r.TokenPolicies, []string{PolicyName(s.Name)}) {
			t.Errorf("%s grants %v, want only %s", file, r.TokenPolicies, PolicyName(s.Name))
		}
		ttl, err1 := time.ParseDuration(r.TokenTTL)
		maxTTL, err2 := time.ParseDuration(r.TokenMaxTTL)
		if err1 != nil || err2 != nil || ttl <= 0 || maxTTL < ttl {
			t.Errorf("%s: token_ttl %q, token_max_ttl %q", file, r.TokenTTL, r.TokenMaxTTL)
		}
	}
}

// databaseConfig is the body of database/config/<name>.
type databaseConfig struct {
	PluginName             string   `json:"plugin_name"`
	ConnectionURL          string   `json:"connection_url"`
	Username               string   `json:"username"`
	PasswordAuthentication string   `json:"password_authentication"`
	AllowedRoles           []string `json:"allowed_roles"`
	VerifyConnection       bool     `json:"verify_connection"`
	MaxOpenConnections     int      `json:"max_open_connections"`
	MaxIdleConnections     int      `json:"max_idle_connections"`
	MaxConnectionLifetime  string   `json:"max_connection_lifetime"`
}

// staticRole is the body of database/static-roles/<name>.
type staticRole struct {
	DBName             string   `json:"db_name"`
	Username           string   `json:"username"`
	RotationPeriod     string   `json:"rotation_period"`
	RotationStatements []string `json:"rotation_statements"`
}

// TestDatabaseSecretsEngine: the connection and static roles decode
// strictly, rotate every 90 days, cover exactly the static roles the
// Services read, and name database roles deploy/postgres/roles.sql (or the DBA) creates;
// no password is in any file.
func TestDatabaseSecretsEngine(t *testing.T) {
	roles, err := os.ReadFile(filepath.Join(root, "deploy", "postgres", "roles.sql"))
	if err != nil {
		t.Fatal(err)
	}
	// The roles roles.sql creates, and the two the DBA creates (the chart's
	// values name them: the schema owner the migrations run as, and
	// PgBouncer's auth user), deploy/README.md's prerequisites.
	var values struct {
		Database struct {
			Migrate struct {
				User string `json:"user"`
			} `json:"migrate"`
		} `json:"database"`
		PgBouncer struct {
			AuthUser string `json:"authUser"`
		} `json:"pgbouncer"`
	}
	vb, err := os.ReadFile(filepath.Join(root, "deploy", "helm", "coffeebuddy", "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(vb, &values); err != nil {
		t.Fatal(err)
	}
	created := func(role string) bool {
		return regexp.MustCompile(`(?m)^ALTER ROLE `+role+`\s+LOGIN\b`).Match(roles) ||
			role == values.Database.Migrate.User || role == values.PgBouncer.AuthUser
	}

	var cfg databaseConfig
	decodeStrict(t, "database/config.json", &cfg)
	if cfg.PluginName != "postgresql-database-plugin" {
		t.Errorf("plugin_name %q", cfg.PluginName)
	}
	for _, want := range []string{"{{username}}:{{password}}@", "sslmode=verify-full", "sslrootcert="} {
		if !strings.Contains(cfg.ConnectionURL, want) {
			t.Errorf("connection_url %q lacks %q", cfg.ConnectionURL, want)
		}
	}
	if cfg.Username != "coffeebuddy_vault" || !created(cfg.Username) ||
		!regexp.MustCompile(`(?m)^ALTER ROLE coffeebuddy_vault\s.*\bCREATEROLE\b`).Match(roles) {
		t.Errorf("username %q: want coffeebuddy_vault, created with CREATEROLE by deploy/postgres/roles.sql", cfg.Username)
	}
	if cfg.PasswordAuthentication != "scram-sha-256" || !cfg.VerifyConnection {
		t.Errorf("password_authentication %q, verify_connection %v", cfg.PasswordAuthentication, cfg.VerifyConnection)
	}
	if _, err := time.ParseDuration(cfg.MaxConnectionLifetime); err != nil {
		t.Errorf("max_connection_lifetime: %v", err)
	}

	read := map[string]bool{} // static roles the Services read
	for _, s := range services(t) {
		for _, p := range s.Paths() {
			if r, ok := strings.CutPrefix(p, "database/static-creds/"); ok {
				read[r] = true
			}
		}
	}
	files, _ := filepath.Glob("database/static-roles/*.json")
	var defined []string
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".json")
		defined = append(defined, name)
		var r staticRole
		decodeStrict(t, f, &r)
		if r.DBName != "coffeebuddy" {
			t.Errorf("%s: db_name %q, want the connection coffeebuddy", f, r.DBName)
		}
		if want := strings.ReplaceAll(name, "-", "_"); r.Username != want || !created(want) {
			t.Errorf("%s: username %q, want %s as deploy/postgres/roles.sql creates it", f, r.Username, want)
		}
		if d, err := time.ParseDuration(r.RotationPeriod); err != nil || d != 90*24*time.Hour {
			t.Errorf("%s: rotation_period %q, want 2160h (90 days)", f, r.RotationPeriod)
		}
		if len(r.RotationStatements) != 1 || !strings.Contains(r.RotationStatements[0], `"{{name}}"`) || !strings.Contains(r.RotationStatements[0], `'{{password}}'`) {
			t.Errorf("%s: rotation_statements %q", f, r.RotationStatements)
		}
		if !read[name] {
			t.Errorf("%s: no Service reads database/static-creds/%s", f, name)
		}
	}
	for r := range read {
		if !slices.Contains(defined, r) {
			t.Errorf("a Service reads database/static-creds/%s, which no static role defines", r)
		}
	}
	allowed := slices.Clone(cfg.AllowedRoles)
	slices.Sort(allowed)
	slices.Sort(defined)
	if !slices.Equal(allowed, defined) {
		t.Errorf("allowed_roles %v, static roles %v", allowed, defined)
	}
	// Passwords come from stdin (the one-off) and Vault; none in a file.
	all, _ := filepath.Glob("*/*.json")
	more, _ := filepath.Glob("*/*/*.json")
	for _, f := range append(all, more...) {
		b, _ := os.ReadFile(f)
		if regexp.MustCompile(`"(password|token|secret_id|client_secret)"\s*:`).Match(b) {
			t.Errorf("%s holds a credential field", f)
		}
	}
}

// TestAuthAndAudit decodes the Kubernetes auth config and the audit device.
func TestAuthAndAudit(t *testing.T) {
	var k8s struct {
		KubernetesHost string `json:"kubernetes_host"`
	}
	decodeStrict(t, "auth/kubernetes.json", &k8s)
	if !strings.HasPrefix(k8s.KubernetesHost, "https://") {
		t.Errorf("kubernetes_host %q", k8s.KubernetesHost)
	}
	var audit struct {
		Type        string            `json:"type"`
		Description string            `json:"description"`
		Options     map[string]string `json:"options"`
	}
	decodeStrict(t, "audit/file.json", &audit)
	if audit.Type != "file" || !filepath.IsAbs(audit.Options["file_path"]) {
		t.Errorf("audit device %+v: want a file device with an absolute file_path", audit)
	}
	// Secrets in the log stay HMAC'd, and the log is not world-readable.
	if audit.Options["log_raw"] != "false" || audit.Options["mode"] != "0600" {
		t.Errorf("audit options %v: want log_raw false, mode 0600", audit.Options)
	}
}
