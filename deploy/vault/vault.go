// Package vault derives CoffeeBuddy's per-pod Vault configuration from
// what the repository already says, so there is one source of truth: the
// Helm chart. The Vault agent annotations of each pod it renders (the
// Knative Services in deploy/knative/, and the migration Job, the decK sync
// Job and PgBouncer in deploy/vault/workloads/, both written by `make
// chart`) name the role the pod logs in with and the secret paths it reads.
// From them it writes, for each identity (a function, or migrate, deck-sync,
// pgbouncer):
//
//   - policies/<identity>.hcl: policy coffeebuddy-<identity>, read on
//     exactly the paths the pod injects;
//   - roles/<identity>.json: the Kubernetes-auth role coffeebuddy-<identity>,
//     bound to the pod's ServiceAccount and namespace, granting that policy
//     alone (apply.sh writes it with `vault write … @file`).
//
// The tests check the generated files are current, parse the policies with
// hashicorp/hcl/v2, and check the annotations against each function's
// function.Needs in main.go (a function reads only the paths it needs).
//
// Regenerate with `cd deploy/vault && GOWORK=off go generate`.
package vault

//go:generate go run ./cmd/vaultgen

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"
)

// Annotation names of the Vault agent injector.
const (
	annInject     = "vault.hashicorp.com/agent-inject"
	annRole       = "vault.hashicorp.com/role"
	annSecret     = "vault.hashicorp.com/agent-inject-secret-"
	annTemplate   = "vault.hashicorp.com/agent-inject-template-"
	annStaticPoll = "vault.hashicorp.com/template-static-secret-render-interval"
)

// Token lifetimes of every function role: the agent renews its token and
// logs in again with the pod's ServiceAccount token when it expires.
const (
	TokenTTL    = "1h"
	TokenMaxTTL = "24h"
)

// Service is what a pod template says about Vault: a Knative Service's, or
// a chart Job's or Deployment's (Kind).
type Service struct {
	Kind           string // Service, Job or Deployment
	Name           string // the function, or the identity (ServiceAccount without coffeebuddy-)
	Namespace      string
	ServiceAccount string
	File           string // the manifest, relative to the repository root
	Inject         bool   // agent-inject: "true"
	Role           string // vault.hashicorp.com/role
	StaticPoll     string // template-static-secret-render-interval, "" when unset
	Secrets        []Secret
	Env            map[string]EnvVar
}

// Secret is one file the agent renders under /vault/secrets/.
type Secret struct {
	File string // the name under /vault/secrets/
	Path string // agent-inject-secret-<file>
	// TemplatePaths are the paths the file's template reads (`with secret
	// "…"`), and TemplateFields the fields it uses (.Data.data.<key> for
	// KV v2, .Data.<field> otherwise).
	TemplatePaths  []string
	TemplateFields []string
}

// EnvVar is a container environment variable: a literal value or a
// ConfigMap key.
type EnvVar struct {
	Value        string
	ConfigMapKey string
}

// Paths are the distinct secret paths a Service injects, sorted.
func (s Service) Paths() []string {
	var ps []string
	for _, sec := range s.Secrets {
		ps = append(ps, sec.Path)
	}
	slices.Sort(ps)
	return slices.Compact(ps)
}

// PolicyName is the Vault policy (and role) of a function or identity.
func PolicyName(function string) string { return "coffeebuddy-" + function }

// manifest is the part of a Knative Service this package reads.
type manifest struct {
	Kind     string `json:"kind"`
	Metadata struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	} `json:"metadata"`
	Spec struct {
		Template struct {
			Metadata struct {
				Annotations map[string]string `json:"annotations"`
			} `json:"metadata"`
			Spec struct {
				ServiceAccountName string `json:"serviceAccountName"`
				Containers         []struct {
					Env []struct {
						Name      string `json:"name"`
						Value     string `json:"value"`
						ValueFrom *struct {
							ConfigMapKeyRef *struct {
								Key string `json:"key"`
							} `json:"configMapKeyRef"`
						} `json:"valueFrom"`
					} `json:"env"`
				} `json:"containers"`
			} `json:"spec"`
		} `json:"template"`
	} `json:"spec"`
}

var (
	withSecret = regexp.MustCompile(`with secret "([^"]+)"`)
	dataField  = regexp.MustCompile(`\.Data\.(?:data\.)?(\w+)`)
)

// Sources are the rendered manifests LoadServices reads, relative to the
// repository root.
var Sources = []string{"deploy/knative/service-*.yaml", "deploy/vault/workloads/*.yaml"}

// LoadServices reads every manifest of Sources under root.
func LoadServices(root string) ([]Service, error) {
	var files []string
	for _, glob := range Sources {
		fs, err := filepath.Glob(filepath.Join(root, filepath.FromSlash(glob)))
		if err != nil {
			return nil, err
		}
		if len(fs) == 0 {
			return nil, fmt.Errorf("vault: no %s under %s (make chart writes them)", glob, root)
		}
		files = append(files, fs...)
	}
	var out []Service
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var m manifest
		if err := yaml.Unmarshal(b, &m); err != nil {
			return nil, fmt.Errorf("vault: %s: %w", f, err)
		}
		switch {
		case m.Kind == "Service" && len(m.Spec.Template.Spec.Containers) != 1:
			return nil, fmt.Errorf("vault: %s: want a Service with one container", f)
		case m.Kind != "Service" && m.Kind != "Job" && m.Kind != "Deployment":
			return nil, fmt.Errorf("vault: %s: a %s, want a Service, Job or Deployment", f, m.Kind)
		case len(m.Spec.Template.Spec.Containers) == 0:
			return nil, fmt.Errorf("vault: %s: no container", f)
		}
		rel, _ := filepath.Rel(root, f)
		ann := m.Spec.Template.Metadata.Annotations
		name := m.Metadata.Name
		if m.Kind != "Service" {
			name = strings.TrimPrefix(m.Spec.Template.Spec.ServiceAccountName, PolicyName(""))
		}
		s := Service{
			Kind: m.Kind, Name: name, Namespace: m.Metadata.Namespace,
			ServiceAccount: m.Spec.Template.Spec.ServiceAccountName,
			File:           filepath.ToSlash(rel),
			Inject:         ann[annInject] == "true",
			Role:           ann[annRole],
			StaticPoll:     ann[annStaticPoll],
			Env:            map[string]EnvVar{},
		}
		for k, v := range ann {
			file, ok := strings.CutPrefix(k, annSecret)
			if !ok {
				continue
			}
			sec := Secret{File: file, Path: strings.TrimSpace(v)}
			tmpl := ann[annTemplate+file]
			for _, mm := range withSecret.FindAllStringSubmatch(tmpl, -1) {
				sec.TemplatePaths = append(sec.TemplatePaths, mm[1])
			}
			for _, mm := range dataField.FindAllStringSubmatch(tmpl, -1) {
				sec.TemplateFields = append(sec.TemplateFields, mm[1])
			}
			s.Secrets = append(s.Secrets, sec)
		}
		sort.Slice(s.Secrets, func(i, j int) bool { return s.Secrets[i].File < s.Secrets[j].File })
		for _, e := range m.Spec.Template.Spec.Containers[0].Env { // the function's own container
			v := EnvVar{Value: e.Value}
			if e.ValueFrom != nil && e.ValueFrom.ConfigMapKeyRef != nil {
				v.ConfigMapKey = e.ValueFrom.ConfigMapKeyRef.Key
			}
			s.Env[e.Name] = v
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Policy renders policy coffeebuddy-<function>: read on each path the
// Service injects, nothing else. Both kinds of path are read-only for the
// agent: a KV v2 data path, and a database static role's current
// credentials (database/static-creds/<role>, read only).
func Policy(s Service) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Generated by deploy/vault/cmd/vaultgen from %s. DO NOT EDIT:\n", s.File)
	fmt.Fprintf(&b, "# change the chart's vault.hashicorp.com annotations and run make chart.\n")
	fmt.Fprintf(&b, "#\n# Policy %s: what the %s pods' Vault agent reads, nothing else.\n", PolicyName(s.Name), s.Name)
	for _, p := range s.Paths() {
		var files []string
		for _, sec := range s.Secrets {
			if sec.Path == p {
				files = append(files, "/vault/secrets/"+sec.File)
			}
		}
		fmt.Fprintf(&b, "\n# %s\npath %q {\n  capabilities = [\"read\"]\n}\n", strings.Join(files, ", "), p)
	}
	return b.Bytes()
}

// KubernetesRole is the body of auth/kubernetes/role/<name>; the tests
// decode the files strictly into it.
type KubernetesRole struct {
	BoundServiceAccountNames      []string `json:"bound_service_account_names"`
	BoundServiceAccountNamespaces []string `json:"bound_service_account_namespaces"`
	TokenPolicies                 []string `json:"token_policies"`
	TokenTTL                      string   `json:"token_ttl"`
	TokenMaxTTL                   string   `json:"token_max_ttl"`
}

// Role renders the Kubernetes-auth role of a Service.
func Role(s Service) ([]byte, error) {
	b, err := json.MarshalIndent(KubernetesRole{
		BoundServiceAccountNames:      []string{s.ServiceAccount},
		BoundServiceAccountNamespaces: []string{s.Namespace},
		TokenPolicies:                 []string{PolicyName(s.Name)},
		TokenTTL:                      TokenTTL,
		TokenMaxTTL:                   TokenMaxTTL,
	}, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// Generate returns every generated file, by path relative to deploy/vault,
// for the pods that use Vault. A pod that injects secrets must log in with
// role coffeebuddy-<name> as ServiceAccount coffeebuddy-<name>; two pods of
// one identity are refused (their policies would overwrite each other).
func Generate(services []Service) (map[string][]byte, error) {
	out := map[string][]byte{}
	seen := map[string]string{}
	for _, s := range services {
		if !s.Inject {
			if len(s.Secrets) > 0 || s.Role != "" {
				return nil, fmt.Errorf("vault: %s: Vault annotations without %s: \"true\"", s.File, annInject)
			}
			continue
		}
		if want := PolicyName(s.Name); s.Role != want || s.ServiceAccount != want {
			return nil, fmt.Errorf("vault: %s: role %q and serviceAccountName %q, want both %q", s.File, s.Role, s.ServiceAccount, want)
		}
		if len(s.Secrets) == 0 {
			return nil, fmt.Errorf("vault: %s: agent-inject without any agent-inject-secret-*", s.File)
		}
		if other, dup := seen[s.Name]; dup {
			return nil, fmt.Errorf("vault: %s and %s both log in as %s", other, s.File, PolicyName(s.Name))
		}
		seen[s.Name] = s.File
		out["policies/"+s.Name+".hcl"] = Policy(s)
		role, err := Role(s)
		if err != nil {
			return nil, err
		}
		out["roles/"+s.Name+".json"] = role
	}
	return out, nil
}

// Generated are the folders Generate owns: every file in them is generated.
var Generated = []string{"policies", "roles"}
