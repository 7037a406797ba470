package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"sigs.k8s.io/yaml"
)

// Facts are what a function's code says about what it needs at run time.
// The chart's Service template derives env, Vault secrets and the database
// role's URL from them; values.yaml carries only knobs.
type Facts struct {
	// Description is func.yaml's leading comment.
	Description string `json:"description"`
	// HTTP functions (func.yaml invoke: http, function.Spec.Routes) are
	// called by Kong; the others by the Broker.
	HTTP bool `json:"http"`
	// Needs, from function.Needs in main.go. Kafka is also true when Slack
	// is: the runtime buffers rate-limited Slack calls in slack.retry.
	DB    bool `json:"db"`
	Kafka bool `json:"kafka"`
	Slack bool `json:"slack"`
	// OIDC: imports shared/oidcauth (needs OIDC_ISSUER_URL, OIDC_AUDIENCE).
	OIDC bool `json:"oidc"`
	// CursorKey: reads AUDIT_CURSOR_KEY (a Vault file).
	CursorKey bool `json:"cursorKey"`
	// LastCall: uses Config.LastCall (COFFEE_LAST_CALL).
	LastCall bool `json:"lastCall"`
	// WarnBefore, RemindAfter: use Config.WarnBefore (COFFEE_WARN_BEFORE),
	// Config.RemindAfter (COFFEE_REMIND_AFTER).
	WarnBefore  bool `json:"warnBefore"`
	RemindAfter bool `json:"remindAfter"`
	// UserRateLimit: reads SLACK_USER_RATE_LIMIT.
	UserRateLimit bool `json:"userRateLimit"`
}

// Function is one folder under functions/.
type Function struct {
	Name string
	Facts
	FuncYAML FuncYAML
}

// FuncYAML is the part of a Knative func.yaml the chart and ko agree with.
type FuncYAML struct {
	Name     string `json:"name"`
	Runtime  string `json:"runtime"`
	Registry string `json:"registry"`
	Invoke   string `json:"invoke"`
	Build    struct {
		Builder   string `json:"builder"`
		BuildEnvs []struct {
			Name  string `json:"name"`
			Value string `json:"value"`
		} `json:"buildEnvs"`
	} `json:"build"`
	Deploy map[string]any `json:"deploy"`
}

var needsRE = regexp.MustCompile(`Needs:\s*function\.Needs\{([^}]*)\}`)

// LoadFunctions reads every functions/<name>/ (those with a func.yaml).
func LoadFunctions(dir string) ([]Function, error) {
	yamls, err := filepath.Glob(filepath.Join(dir, "*", "func.yaml"))
	if err != nil {
		return nil, err
	}
	if len(yamls) == 0 {
		return nil, fmt.Errorf("no %s/*/func.yaml", dir)
	}
	var out []Function
	for _, y := range yamls {
		f, err := LoadFunction(filepath.Dir(y))
		if err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, nil
}

// LoadFunction reads one function folder.
func LoadFunction(dir string) (Function, error) {
	name := filepath.Base(dir)
	f := Function{Name: name}
	raw, err := os.ReadFile(filepath.Join(dir, "func.yaml"))
	if err != nil {
		return f, err
	}
	if err := yaml.Unmarshal(raw, &f.FuncYAML); err != nil {
		return f, fmt.Errorf("functions/%s/func.yaml: %w", name, err)
	}
	if f.FuncYAML.Name != name {
		return f, fmt.Errorf("functions/%s/func.yaml: name %q, want the folder's", name, f.FuncYAML.Name)
	}
	var desc []string
	for _, l := range strings.Split(string(raw), "\n") {
		if !strings.HasPrefix(l, "#") {
			break
		}
		desc = append(desc, strings.TrimSpace(strings.TrimPrefix(l, "#")))
	}
	f.Description = strings.Join(desc, " ")

	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return f, err
	}
	var src strings.Builder
	for _, g := range files {
		if strings.HasSuffix(g, "_test.go") {
			continue
		}
		b, err := os.ReadFile(g)
		if err != nil {
			return f, err
		}
		src.Write(b)
	}
	s := src.String()
	m := needsRE.FindStringSubmatch(s)
	if m == nil {
		return f, fmt.Errorf("functions/%s: no function.Needs{…} in its Go files", name)
	}
	needs := m[1]
	f.DB = strings.Contains(needs, "DB: true")
	f.Slack = strings.Contains(needs, "Slack: true")
	f.Kafka = strings.Contains(needs, "Kafka: true") || f.Slack
	routes := strings.Contains(s, "Routes:")
	f.HTTP = f.FuncYAML.Invoke == "http"
	if routes != f.HTTP {
		return f, fmt.Errorf("functions/%s: func.yaml invoke %q but function.Spec Routes set = %v: they must agree (http ⇔ Routes)", name, f.FuncYAML.Invoke, routes)
	}
	f.OIDC = strings.Contains(s, `"github.com/coffeebuddy/coffeebuddy/shared/oidcauth"`)
	f.CursorKey = strings.Contains(s, `"AUDIT_CURSOR_KEY"`)
	f.LastCall = strings.Contains(s, "Config.LastCall")
	f.WarnBefore = strings.Contains(s, "Config.WarnBefore")
	f.RemindAfter = strings.Contains(s, "Config.RemindAfter")
	f.UserRateLimit = strings.Contains(s, `"SLACK_USER_RATE_LIMIT"`)
	return f, nil
}
