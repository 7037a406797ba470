package observability

import (
	"bytes"
	"fmt"
	"os"

	"sigs.k8s.io/yaml"
)

// Paths of the sources and generated files, relative to this module.
const (
	RulesFile          = "prometheus/rules.yml"
	RulesTestFile      = "prometheus/rules_test.yml"
	PrometheusRuleFile = "prometheus/prometheusrule.yaml"
	DashboardFile      = "grafana/coffeebuddy.json"
	AlertmanagerFile   = "alertmanager/alertmanager.yml"
)

// RuleFile is a Prometheus rule file.
type RuleFile struct {
	Groups []RuleGroup `json:"groups"`
}

// RuleGroup is one group of rules.
type RuleGroup struct {
	Name     string `json:"name"`
	Interval string `json:"interval,omitempty"`
	Rules    []Rule `json:"rules"`
}

// Rule is a recording rule (Record) or an alerting rule (Alert).
type Rule struct {
	Record      string            `json:"record,omitempty"`
	Alert       string            `json:"alert,omitempty"`
	Expr        string            `json:"expr"`
	For         string            `json:"for,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// LoadRules reads a rule file strictly: a misspelt field is an error
// rather than a rule that silently lacks it.
func LoadRules(path string) (RuleFile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return RuleFile{}, err
	}
	var rf RuleFile
	if err := yaml.UnmarshalStrict(b, &rf); err != nil {
		return RuleFile{}, fmt.Errorf("%s: %w", path, err)
	}
	return rf, nil
}

// Alerts returns the alerting rules.
func (rf RuleFile) Alerts() []Rule {
	var out []Rule
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			if r.Alert != "" {
				out = append(out, r)
			}
		}
	}
	return out
}

// Recorded returns the names the recording rules define.
func (rf RuleFile) Recorded() map[string]bool {
	out := map[string]bool{}
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			if r.Record != "" {
				out[r.Record] = true
			}
		}
	}
	return out
}

// prometheusRule is the Prometheus Operator's PrometheusRule
// (monitoring.coreos.com/v1): the same groups, as a Kubernetes object.
type prometheusRule struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name      string            `json:"name"`
		Namespace string            `json:"namespace"`
		Labels    map[string]string `json:"labels"`
	} `json:"metadata"`
	Spec RuleFile `json:"spec"`
}

// PrometheusRule renders rf as the PrometheusRule the cluster's Prometheus
// Operator loads (namespace coffeebuddy).
func PrometheusRule(rf RuleFile) ([]byte, error) {
	var pr prometheusRule
	pr.APIVersion, pr.Kind = "monitoring.coreos.com/v1", "PrometheusRule"
	pr.Metadata.Name, pr.Metadata.Namespace = "coffeebuddy", "coffeebuddy"
	pr.Metadata.Labels = map[string]string{
		"app.kubernetes.io/name":    "coffeebuddy",
		"app.kubernetes.io/part-of": "coffeebuddy",
	}
	pr.Spec = rf
	b, err := yaml.Marshal(pr)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	out.WriteString("# Generated from " + RulesFile + " by `go generate` in deploy/observability. DO NOT EDIT:\n")
	out.WriteString("# change rules.yml and regenerate; TestPrometheusRuleIsGenerated fails on a difference.\n")
	out.Write(b)
	return out.Bytes(), nil
}
