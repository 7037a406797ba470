package validate

// The Helm chart deploy/helm/coffeebuddy, through Helm itself and then
// through the same strict decoding and Knative validation as the manifests:
// every object `helm template` renders, with the default values and with the
// production example, must decode into its Go type with no unknown field and
// pass the webhooks' checks.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"
	"sigs.k8s.io/yaml"
)

const (
	chartDir       = "../helm/coffeebuddy"
	productionFile = "../helm/coffeebuddy/values-production.yaml"
)

func helmBin(t *testing.T) string {
	t.Helper()
	h := os.Getenv("HELM_BIN")
	if h == "" {
		h = "../../.tmp/bin/helm"
	}
	if _, err := os.Stat(h); err != nil {
		t.Fatalf("helm not found at %s: run `bash .ci/ensure-helm` (make test does) or set HELM_BIN", h)
	}
	return h
}

// helmTemplate renders chart with args; the error carries Helm's message.
func helmTemplate(t *testing.T, chart string, args ...string) ([]byte, error) {
	t.Helper()
	cmd := exec.Command(helmBin(t), append([]string{"template", "coffeebuddy", chart}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("helm template %v: %w: %s", args, err, stderr.String())
	}
	return out, nil
}

// Rendered is one `helm template` output, every object strictly decoded.
type Rendered struct {
	Knative []Doc // Knative kinds, as DecodeFile gives them
	Core    []CoreDoc
	Topics  []KafkaTopic
	Rules   []PrometheusRule
}

// CoreDoc is a Kubernetes core object decoded into its k8s.io/api type.
type CoreDoc struct {
	Kind   string
	Name   string
	Object metav1.Object
	Hook   string // helm.sh/hook
}

// KafkaTopic is the part of Strimzi's KafkaTopic the chart sets; strict
// decoding fails on anything else.
type KafkaTopic struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   metav1.ObjectMeta `json:"metadata"`
	Spec       struct {
		TopicName  string         `json:"topicName"`
		Partitions int32          `json:"partitions"`
		Replicas   int16          `json:"replicas"`
		Config     map[string]any `json:"config"`
	} `json:"spec"`
}

// PrometheusRule is the Prometheus Operator's rule object, as far as rule
// files go.
type PrometheusRule struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   metav1.ObjectMeta `json:"metadata"`
	Spec       struct {
		Groups []struct {
			Name     string `json:"name"`
			Interval string `json:"interval,omitempty"`
			Limit    int    `json:"limit,omitempty"`
			Rules    []struct {
				Alert         string            `json:"alert,omitempty"`
				Record        string            `json:"record,omitempty"`
				Expr          string            `json:"expr"`
				For           string            `json:"for,omitempty"`
				KeepFiringFor string            `json:"keep_firing_for,omitempty"`
				Labels        map[string]string `json:"labels,omitempty"`
				Annotations   map[string]string `json:"annotations,omitempty"`
			} `json:"rules"`
		} `json:"groups"`
	} `json:"spec"`
}

func strictJSON(raw []byte, into any) error {
	j, err := yaml.YAMLToJSONStrict(raw)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.DisallowUnknownFields()
	return dec.Decode(into)
}

func newCore(apiVersion, kind string) metav1.Object {
	switch apiVersion + ", " + kind {
	case "v1, Namespace":
		return &corev1.Namespace{}
	case "v1, ConfigMap":
		return &corev1.ConfigMap{}
	case "v1, ServiceAccount":
		return &corev1.ServiceAccount{}
	case "v1, Service":
		return &corev1.Service{}
	case "apps/v1, Deployment":
		return &appsv1.Deployment{}
	case "batch/v1, Job":
		return &batchv1.Job{}
	case "policy/v1, PodDisruptionBudget":
		return &policyv1.PodDisruptionBudget{}
	case "networking.k8s.io/v1, NetworkPolicy":
		return &networkingv1.NetworkPolicy{}
	}
	return nil
}

// decodeRendered decodes every document of a helm template output strictly
// (decodeAll) and fails the test on any problem.
func decodeRendered(t *testing.T, label string, out []byte) Rendered {
	t.Helper()
	r, errs := decodeAll(label, out)
	for _, err := range errs {
		t.Error(err)
	}
	return r
}

// decodeAll: Knative kinds through Decode (Check comes later), core kinds
// through k8s.io/api, KafkaTopic and PrometheusRule through the structs
// above, all strictly (unknown and duplicate fields fail); names and labels
// by the API server's rules. Any other kind is a problem.
func decodeAll(label string, out []byte) (Rendered, []error) {
	var r Rendered
	var errs []error
	for i, raw := range splitDocs(out) {
		var tm struct {
			APIVersion string            `json:"apiVersion"`
			Kind       string            `json:"kind"`
			Metadata   metav1.ObjectMeta `json:"metadata"`
		}
		if err := yaml.Unmarshal(raw, &tm); err != nil {
			errs = append(errs, fmt.Errorf("%s document %d: %w", label, i+1, err))
			continue
		}
		where := fmt.Sprintf("%s: %s %s %q", label, tm.APIVersion, tm.Kind, tm.Metadata.Name)
		errs = append(errs, checkMeta(where, tm.Metadata)...)
		if newObject(tm.APIVersion, tm.Kind) != nil {
			docs, err := Decode(label, raw)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			r.Knative = append(r.Knative, docs...)
			continue
		}
		if obj := newCore(tm.APIVersion, tm.Kind); obj != nil {
			if err := strictJSON(raw, obj); err != nil {
				errs = append(errs, fmt.Errorf("%s: strict decode: %w", where, err))
				continue
			}
			r.Core = append(r.Core, CoreDoc{Kind: tm.Kind, Name: tm.Metadata.Name, Object: obj, Hook: tm.Metadata.Annotations["helm.sh/hook"]})
			continue
		}
		switch tm.APIVersion + ", " + tm.Kind {
		case "kafka.strimzi.io/v1beta2, KafkaTopic", "kafka.strimzi.io/v1, KafkaTopic":
			var kt KafkaTopic
			if err := strictJSON(raw, &kt); err != nil {
				errs = append(errs, fmt.Errorf("%s: strict decode: %w", where, err))
				continue
			}
			r.Topics = append(r.Topics, kt)
		case "monitoring.coreos.com/v1, PrometheusRule":
			var pr PrometheusRule
			if err := strictJSON(raw, &pr); err != nil {
				errs = append(errs, fmt.Errorf("%s: strict decode: %w", where, err))
				continue
			}
			r.Rules = append(r.Rules, pr)
		default:
			errs = append(errs, fmt.Errorf("%s: a kind this test cannot decode strictly: teach decodeAll", where))
		}
	}
	return r, errs
}

// checkMeta applies the API server's name and label rules.
func checkMeta(where string, m metav1.ObjectMeta) []error {
	var errs []error
	for _, e := range validation.IsDNS1123Subdomain(m.Name) {
		errs = append(errs, fmt.Errorf("%s: name: %s", where, e))
	}
	if m.Namespace != "" {
		for _, e := range validation.IsDNS1123Label(m.Namespace) {
			errs = append(errs, fmt.Errorf("%s: namespace: %s", where, e))
		}
	}
	for k, v := range m.Labels {
		for _, e := range validation.IsQualifiedName(k) {
			errs = append(errs, fmt.Errorf("%s: label key %q: %s", where, k, e))
		}
		for _, e := range validation.IsValidLabelValue(v) {
			errs = append(errs, fmt.Errorf("%s: label %s value %q: %s", where, k, v, e))
		}
	}
	return errs
}

// TestRenderedDecodingCanFail proves decodeAll bites on what a template
// mistake would produce.
func TestRenderedDecodingCanFail(t *testing.T) {
	for name, tc := range map[string]struct{ doc, want string }{
		"core unknown field":    {"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata: {}\nextra: 1\n", "unknown field"},
		"core wrong type":       {"apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: a\nautomountServiceAccountToken: maybe\n", "strict decode"},
		"job field misplaced":   {"apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: a\nspec:\n  restartPolicy: Never\n", "unknown field"},
		"duplicate key":         {"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  name: b\n", "duplicate"},
		"topic unknown field":   {"apiVersion: kafka.strimzi.io/v1beta2\nkind: KafkaTopic\nmetadata:\n  name: a\nspec:\n  partitions: 3\n  replicationFactor: 2\n", "unknown field"},
		"rule unknown field":    {"apiVersion: monitoring.coreos.com/v1\nkind: PrometheusRule\nmetadata:\n  name: a\nspec:\n  groups:\n    - name: g\n      rules:\n        - alert: A\n          expr: up\n          severity: page\n", "unknown field"},
		"bad name":              {"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Coffee_Buddy\n", "RFC 1123"},
		"bad label value":       {"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  labels:\n    x: \"a b\"\n", "label"},
		"unknown kind":          {"apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: a\n", "cannot decode"},
		"knative unknown field": {"apiVersion: serving.knative.dev/v1\nkind: Service\nmetadata:\n  name: a\nspec:\n  replicas: 3\n", "unknown field"},
	} {
		_, errs := decodeAll(name, []byte(tc.doc))
		if len(errs) == 0 || !strings.Contains(errors.Join(errs...).Error(), tc.want) {
			t.Errorf("%s: errors %v, want one containing %q", name, errs, tc.want)
		}
	}
}

// renderCase is one set of values the chart must render validly.
type renderCase struct {
	name string
	args []string
}

var renderCases = []renderCase{
	{"default values", nil},
	{"values-production.yaml", []string{"-f", productionFile}},
}

// render renders and decodes one case, failing the test on any error.
func render(t *testing.T, c renderCase) Rendered {
	t.Helper()
	out, err := helmTemplate(t, chartDir, c.args...)
	if err != nil {
		t.Fatal(err)
	}
	return decodeRendered(t, c.name, out)
}

func TestHelmLint(t *testing.T) {
	for _, c := range renderCases {
		args := append([]string{"lint", "--strict", chartDir}, c.args...)
		out, err := exec.Command(helmBin(t), args...).CombinedOutput()
		if err != nil {
			t.Errorf("helm %v: %v\n%s", args, err, out)
		}
		t.Logf("helm lint (%s): %s", c.name, strings.TrimSpace(string(out)))
	}
}

// TestChartRenders: every object of both renders decodes strictly; the
// Knative ones pass the webhooks' SetDefaults and Validate on a cluster set
// up as deploy/README.md says; Services carry no warning; every reference
// resolves within the render (Triggers → Broker, Services, KafkaSink;
// Services → ServiceAccounts and ConfigMap keys); each Service's env is what
// its function reads (the env-vs-Needs check of the manifests).
func TestChartRenders(t *testing.T) {
	for _, c := range renderCases {
		t.Run(c.name, func(t *testing.T) {
			r := render(t, c)
			kinds := map[string]int{}
			for _, d := range r.Knative {
				kinds[d.Kind]++
				errs, warns := Check(ClusterContext(), d)
				if errs != nil {
					t.Errorf("%s: invalid: %v", d, errs)
				}
				if warns != nil && d.Kind == "Service" {
					t.Errorf("%s: Service has warnings: %v", d, warns)
				}
			}
			for _, d := range r.Core {
				kinds[d.Kind]++
			}
			kinds["KafkaTopic"] = len(r.Topics)
			for _, k := range []string{"Broker", "Trigger", "PingSource", "KafkaSource", "KafkaSink", "Service",
				"Namespace", "ConfigMap", "ServiceAccount", "Job", "PodDisruptionBudget", "NetworkPolicy", "KafkaTopic"} {
				if kinds[k] == 0 {
					t.Errorf("no %s rendered", k)
				}
			}
			checkReferences(t, r.Knative)
			checkCoreReferences(t, r)
			checkTopics(t, r)
			t.Logf("%d objects: %v", len(r.Knative)+len(r.Core)+len(r.Topics)+len(r.Rules), kinds)
		})
	}
}

func configMaps(r Rendered) map[string]*corev1.ConfigMap {
	out := map[string]*corev1.ConfigMap{}
	for _, d := range r.Core {
		if cm, ok := d.Object.(*corev1.ConfigMap); ok {
			out[cm.Namespace+"/"+cm.Name] = cm
		}
	}
	return out
}

// checkCoreReferences: ServiceAccounts and ConfigMap keys the pods name
// exist in the render, and every container runs with the restrictive
// securityContext.
func checkCoreReferences(t *testing.T, r Rendered) {
	t.Helper()
	sas := map[string]bool{}
	for _, d := range r.Core {
		if sa, ok := d.Object.(*corev1.ServiceAccount); ok {
			sas[sa.Namespace+"/"+sa.Name] = true
		}
	}
	cms := configMaps(r)
	checkPod := func(where, ns string, spec corev1.PodSpec) {
		if spec.ServiceAccountName != "" && !sas[ns+"/"+spec.ServiceAccountName] {
			t.Errorf("%s: serviceAccountName %s is not rendered", where, spec.ServiceAccountName)
		}
		for _, c := range append(slices.Clone(spec.InitContainers), spec.Containers...) {
			sc := c.SecurityContext
			if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
				sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
				t.Errorf("%s: container %s: securityContext not restrictive: %+v", where, c.Name, sc)
			}
			for _, e := range c.Env {
				if e.ValueFrom == nil || e.ValueFrom.ConfigMapKeyRef == nil {
					continue
				}
				ref := e.ValueFrom.ConfigMapKeyRef
				cm, ok := cms[ns+"/"+ref.Name]
				if !ok {
					t.Errorf("%s: env %s: ConfigMap %s is not rendered", where, e.Name, ref.Name)
				} else if _, ok := cm.Data[ref.Key]; !ok {
					t.Errorf("%s: env %s: ConfigMap %s has no key %s", where, e.Name, ref.Name, ref.Key)
				}
			}
		}
	}
	for _, d := range r.Knative {
		if s, ok := d.Object.(*servingv1.Service); ok {
			checkPod(d.String(), s.Namespace, s.Spec.Template.Spec.PodSpec)
		}
	}
	for _, d := range r.Core {
		switch o := d.Object.(type) {
		case *batchv1.Job:
			checkPod("Job "+o.Name, o.Namespace, o.Spec.Template.Spec)
			if o.Spec.Template.Spec.RestartPolicy != corev1.RestartPolicyNever {
				t.Errorf("Job %s: restartPolicy %q, want Never", o.Name, o.Spec.Template.Spec.RestartPolicy)
			}
		case *appsv1.Deployment:
			checkPod("Deployment "+o.Name, o.Namespace, o.Spec.Template.Spec)
		}
	}
}

// checkTopics: the KafkaTopics cover every topic the KafkaSource reads and
// the KafkaSink writes.
func checkTopics(t *testing.T, r Rendered) {
	t.Helper()
	have := map[string]bool{}
	for _, kt := range r.Topics {
		have[kt.Spec.TopicName] = true
		if kt.Spec.Partitions < 1 || kt.Spec.Replicas < 1 || kt.Metadata.Labels["strimzi.io/cluster"] == "" {
			t.Errorf("KafkaTopic %s: partitions %d, replicas %d, cluster label %q", kt.Metadata.Name, kt.Spec.Partitions, kt.Spec.Replicas, kt.Metadata.Labels["strimzi.io/cluster"])
		}
		if _, ok := kt.Spec.Config["retention.ms"]; !ok {
			t.Errorf("KafkaTopic %s: no retention.ms", kt.Metadata.Name)
		}
	}
	for _, d := range r.Knative {
		var want []string
		switch d.Kind {
		case "KafkaSource", "KafkaSink":
			b, _ := json.Marshal(d.Object)
			var o struct {
				Spec struct {
					Topics []string `json:"topics"`
					Topic  string   `json:"topic"`
				} `json:"spec"`
			}
			json.Unmarshal(b, &o)
			want = append(o.Spec.Topics, o.Spec.Topic)
		}
		for _, w := range want {
			if w != "" && !have[w] {
				t.Errorf("%s uses topic %s, but no KafkaTopic creates it", d, w)
			}
		}
	}
}

// TestChartEventingIsEventingDir: with default values the chart's eventing
// objects are exactly the ones in eventing/*.yaml (the files the local
// stand-in reads), object for object, field for field.
func TestChartEventingIsEventingDir(t *testing.T) {
	out, err := helmTemplate(t, chartDir)
	if err != nil {
		t.Fatal(err)
	}
	eventingKinds := map[string]bool{"Broker": true, "Trigger": true, "PingSource": true, "KafkaSource": true, "KafkaSink": true}
	toMap := func(raw []byte) map[string]any {
		var m map[string]any
		if err := yaml.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	key := func(m map[string]any) string {
		md, _ := m["metadata"].(map[string]any)
		return fmt.Sprint(m["kind"], "/", md["name"])
	}
	chart := map[string]map[string]any{}
	for _, raw := range splitDocs(out) {
		m := toMap(raw)
		if k, _ := m["kind"].(string); eventingKinds[k] && m["apiVersion"] != "serving.knative.dev/v1" {
			chart[key(m)] = m
		}
	}
	files, _ := filepath.Glob("../../eventing/*.yaml")
	src := map[string]map[string]any{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, raw := range splitDocs(b) {
			m := toMap(raw)
			src[key(m)] = m
		}
	}
	if len(src) == 0 || len(src) != len(chart) {
		t.Errorf("eventing/ has %d objects, the chart renders %d", len(src), len(chart))
	}
	for k, want := range src {
		got, ok := chart[k]
		if !ok {
			t.Errorf("%s: in eventing/, not rendered by the chart", k)
			continue
		}
		if !reflect.DeepEqual(got, want) {
			gb, _ := json.MarshalIndent(got, "", " ")
			wb, _ := json.MarshalIndent(want, "", " ")
			t.Errorf("%s differs:\nchart:     %s\neventing/: %s", k, gb, wb)
		}
	}
}

func serviceEnv(s *servingv1.Service) map[string]corev1.EnvVar {
	out := map[string]corev1.EnvVar{}
	for _, e := range s.Spec.Template.Spec.Containers[0].Env {
		out[e.Name] = e
	}
	return out
}

// budget is the database part of the values a render used: the defaults
// with the case's -f file over them.
type budget struct {
	ConnectionBudget, MaxConnections, ReservedConnections int
	PgBouncer                                             bool
}

func valuesBudget(t *testing.T, files ...string) budget {
	t.Helper()
	var b budget
	for _, f := range append([]string{chartDir + "/values.yaml"}, files...) {
		var v struct {
			Database struct {
				ConnectionBudget    *int `json:"connectionBudget"`
				MaxConnections      *int `json:"maxConnections"`
				ReservedConnections *int `json:"reservedConnections"`
			} `json:"database"`
			PgBouncer struct {
				Enabled *bool `json:"enabled"`
			} `json:"pgbouncer"`
		}
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := yaml.Unmarshal(raw, &v); err != nil {
			t.Fatal(err)
		}
		for _, p := range []struct {
			from *int
			to   *int
		}{{v.Database.ConnectionBudget, &b.ConnectionBudget}, {v.Database.MaxConnections, &b.MaxConnections}, {v.Database.ReservedConnections, &b.ReservedConnections}} {
			if p.from != nil {
				*p.to = *p.from
			}
		}
		if v.PgBouncer.Enabled != nil {
			b.PgBouncer = *v.PgBouncer.Enabled
		}
	}
	return b
}

// TestConnectionBudget adds up, from what the chart renders, the most
// connections the functions can open: DATABASE_MAX_CONNS × max-scale of each
// Service that has a DATABASE_URL. Without PgBouncer that must fit
// database.connectionBudget; with it, PgBouncer's server connections
// (replicas × max_db_connections) must, and the functions' pools must fit
// PgBouncer's client limit. The budget must leave the reserved connections
// of max_connections free. Then it shows the chart itself refuses values
// over the budget.
func TestConnectionBudget(t *testing.T) {
	for _, c := range renderCases {
		t.Run(c.name, func(t *testing.T) {
			r := render(t, c)
			var files []string
			if len(c.args) == 2 {
				files = []string{c.args[1]}
			}
			b := valuesBudget(t, files...)
			if b.ConnectionBudget <= 0 || b.ConnectionBudget > b.MaxConnections-b.ReservedConnections {
				t.Errorf("connectionBudget %d: want 1..maxConnections %d - reservedConnections %d", b.ConnectionBudget, b.MaxConnections, b.ReservedConnections)
			}
			sum := 0
			var lines []string
			for _, d := range r.Knative {
				s, ok := d.Object.(*servingv1.Service)
				if !ok {
					continue
				}
				env := serviceEnv(s)
				if _, ok := env["DATABASE_URL"]; !ok {
					if _, ok := env["DATABASE_MAX_CONNS"]; ok {
						t.Errorf("%s: DATABASE_MAX_CONNS without DATABASE_URL", d)
					}
					continue
				}
				pool, err := strconv.Atoi(env["DATABASE_MAX_CONNS"].Value)
				if err != nil || pool < 1 {
					t.Errorf("%s: DATABASE_MAX_CONNS %q: every function with a database states its pool (the default, 20, would blow the budget)", d, env["DATABASE_MAX_CONNS"].Value)
					continue
				}
				maxScale, err := strconv.Atoi(s.Spec.Template.Annotations["autoscaling.knative.dev/max-scale"])
				if err != nil || maxScale < 1 {
					t.Errorf("%s: max-scale %q: a function with a database needs a finite max scale", d, s.Spec.Template.Annotations["autoscaling.knative.dev/max-scale"])
					continue
				}
				sum += pool * maxScale
				lines = append(lines, fmt.Sprintf("%s %d×%d", s.Name, pool, maxScale))
			}
			t.Logf("Σ pool × max scale = %d (%s)", sum, strings.Join(lines, ", "))
			if !b.PgBouncer {
				if sum > b.ConnectionBudget {
					t.Errorf("functions can open %d connections, over database.connectionBudget %d", sum, b.ConnectionBudget)
				}
				return
			}
			var replicas, maxDB, maxClient int
			for _, d := range r.Core {
				switch o := d.Object.(type) {
				case *appsv1.Deployment:
					if o.Name == "coffeebuddy-pgbouncer" && o.Spec.Replicas != nil {
						replicas = int(*o.Spec.Replicas)
					}
				case *corev1.ConfigMap:
					if o.Name == "coffeebuddy-pgbouncer" {
						maxDB = iniInt(t, o.Data["pgbouncer.ini"], "max_db_connections")
						maxClient = iniInt(t, o.Data["pgbouncer.ini"], "max_client_conn")
						if m := iniValue(o.Data["pgbouncer.ini"], "pool_mode"); m != "transaction" {
							t.Errorf("pgbouncer pool_mode %q, want transaction", m)
						}
					}
				}
			}
			t.Logf("PgBouncer: %d replicas × max_db_connections %d = %d server connections; clients %d of %d", replicas, maxDB, replicas*maxDB, sum, replicas*maxClient)
			if replicas < 1 || replicas*maxDB > b.ConnectionBudget {
				t.Errorf("PgBouncer opens up to %d × %d server connections, over database.connectionBudget %d", replicas, maxDB, b.ConnectionBudget)
			}
			if sum > replicas*maxClient {
				t.Errorf("functions open up to %d connections, over PgBouncer's %d × %d", sum, replicas, maxClient)
			}
		})
	}
	for _, over := range [][]string{
		{"--set", "functions.order-place.maxScale=100"},
		{"--set", "functionDefaults.databaseMaxConns=20"},
		{"--set", "database.connectionBudget=190"},
		{"-f", productionFile, "--set", "pgbouncer.replicas=3"},
	} {
		if _, err := helmTemplate(t, chartDir, over...); err == nil || !strings.Contains(err.Error(), "onnection") {
			t.Errorf("helm template %v: %v; want a refusal over the connection budget", over, err)
		}
	}
}

func iniValue(ini, key string) string {
	m := regexp.MustCompile(`(?m)^\s*` + regexp.QuoteMeta(key) + `\s*=\s*(.*?)\s*$`).FindStringSubmatch(ini)
	if m == nil {
		return ""
	}
	return m[1]
}

func iniInt(t *testing.T, ini, key string) int {
	t.Helper()
	n, err := strconv.Atoi(iniValue(ini, key))
	if err != nil {
		t.Errorf("pgbouncer.ini %s: %v", key, err)
	}
	return n
}

// TestDatabaseRoles: slack-ingress reads as the read-only role, audit-api as
// coffeebuddy_audit (ADR 0009), every other function with a database as the
// app role, each with the Vault credentials of that role; URLs carry no
// password; through PgBouncer they carry the pgx setting the PgBouncer test
// in shared/postgres proves (and the migration Job never goes through it).
func TestDatabaseRoles(t *testing.T) {
	for _, c := range renderCases {
		t.Run(c.name, func(t *testing.T) {
			r := render(t, c)
			cm := configMaps(r)["coffeebuddy/coffeebuddy-config"]
			if cm == nil {
				t.Fatal("no ConfigMap coffeebuddy/coffeebuddy-config")
			}
			pgbouncer := valuesBudget(t, c.args[min(1, len(c.args)):]...).PgBouncer
			for _, d := range r.Knative {
				s, ok := d.Object.(*servingv1.Service)
				if !ok {
					continue
				}
				e, ok := serviceEnv(s)["DATABASE_URL"]
				if !ok {
					continue
				}
				key, role := "DATABASE_URL", "app"
				switch s.Name {
				case "slack-ingress":
					key, role = "DATABASE_URL_READONLY", "readonly"
				case "audit-api":
					key, role = "DATABASE_URL_AUDIT", "audit"
				}
				if e.ValueFrom == nil || e.ValueFrom.ConfigMapKeyRef == nil || e.ValueFrom.ConfigMapKeyRef.Key != key {
					t.Errorf("%s: DATABASE_URL from %+v, want coffeebuddy-config key %s", d, e.ValueFrom, key)
				}
				if got, want := s.Spec.Template.Annotations["vault.hashicorp.com/agent-inject-secret-pgpass"], "database/static-creds/coffeebuddy-"+role; got != want {
					t.Errorf("%s: pgpass from %q, want %q", d, got, want)
				}
				url := cm.Data[key]
				if !strings.Contains(url, "coffeebuddy_"+role+"@") {
					t.Errorf("%s: %s = %q, want user coffeebuddy_%s", d, key, url, role)
				}
			}
			for k, url := range cm.Data {
				if !strings.HasPrefix(k, "DATABASE_URL") {
					continue
				}
				if regexp.MustCompile(`://[^@/]*:[^@/]*@`).MatchString(url) || strings.Contains(url, "password") {
					t.Errorf("%s carries a password: %q", k, url)
				}
				through := strings.Contains(url, "coffeebuddy-pgbouncer.")
				if through != pgbouncer || strings.Contains(url, "default_query_exec_mode=cache_describe") != pgbouncer {
					t.Errorf("%s = %q; PgBouncer on: %v (then the URL must point at it with default_query_exec_mode=cache_describe)", k, url, pgbouncer)
				}
			}
			if m := configMaps(r)["coffeebuddy/coffeebuddy-migrate"]; m == nil || strings.Contains(m.Data["DATABASE_URL"], "pgbouncer") || !strings.Contains(m.Data["DATABASE_URL"], "coffeebuddy_owner@") {
				t.Errorf("migration URL %v: want the schema owner straight to PostgreSQL", m)
			}
		})
	}
}

// TestSlackIngressAvailability: at least 3 replicas spread over nodes, a
// PodDisruptionBudget keeping 2 of its pods, and the spread really needs the
// Knative feature flag deploy/README.md asks for.
func TestSlackIngressAvailability(t *testing.T) {
	for _, c := range renderCases {
		t.Run(c.name, func(t *testing.T) {
			r := render(t, c)
			var svc *servingv1.Service
			var svcDoc Doc
			for _, d := range r.Knative {
				if s, ok := d.Object.(*servingv1.Service); ok && s.Name == "slack-ingress" {
					svc, svcDoc = s, d
				}
			}
			if svc == nil {
				t.Fatal("no slack-ingress Service")
			}
			if n, _ := strconv.Atoi(svc.Spec.Template.Annotations["autoscaling.knative.dev/min-scale"]); n < 3 {
				t.Errorf("slack-ingress min-scale %d, want ≥ 3", n)
			}
			tsc := svc.Spec.Template.Spec.TopologySpreadConstraints
			if len(tsc) != 1 || tsc[0].TopologyKey != "kubernetes.io/hostname" || tsc[0].MaxSkew != 1 ||
				tsc[0].LabelSelector == nil || tsc[0].LabelSelector.MatchLabels["app.kubernetes.io/name"] != svc.Spec.Template.Labels["app.kubernetes.io/name"] {
				t.Errorf("slack-ingress topologySpreadConstraints %+v: want maxSkew 1 over kubernetes.io/hostname on its own pods", tsc)
			}
			var pdb *policyv1.PodDisruptionBudget
			for _, d := range r.Core {
				if p, ok := d.Object.(*policyv1.PodDisruptionBudget); ok && p.Name == "slack-ingress" {
					pdb = p
				}
			}
			if pdb == nil || pdb.Spec.MinAvailable == nil || pdb.Spec.MinAvailable.IntValue() != 2 ||
				pdb.Spec.Selector.MatchLabels["serving.knative.dev/service"] != "slack-ingress" {
				t.Errorf("slack-ingress PodDisruptionBudget %+v: want minAvailable 2 over serving.knative.dev/service=slack-ingress", pdb)
			}
			// Without the feature flag Knative refuses the spread.
			if errs, _ := Check(context.Background(), svcDoc); errs == nil || !strings.Contains(errs.Error(), "topologySpreadConstraints") {
				t.Errorf("without kubernetes.podspec-topologyspreadconstraints Knative accepted the spread (%v): is the prerequisite still needed?", errs)
			}
		})
	}
	if _, err := helmTemplate(t, chartDir, "--set", "functions.slack-ingress.minScale=1"); err == nil || !strings.Contains(err.Error(), "minAvailable") {
		t.Errorf("a PodDisruptionBudget of 2 over min-scale 1 rendered (%v): no node could be drained", err)
	}
}

// genChart regenerates the chart into a temporary folder with the given
// generator flags (deploy/helm/gen) and returns the chart's path there.
func genChart(t *testing.T, flags ...string) string {
	t.Helper()
	out := t.TempDir()
	cmd := exec.Command("go", append([]string{"run", ".", "-knative=false", "-out", out}, flags...)...)
	cmd.Dir = "../helm/gen"
	cmd.Env = append(os.Environ(), "GOWORK=off")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gen %v: %v\n%s", flags, err, b)
	}
	return filepath.Join(out, "deploy", "helm", "coffeebuddy")
}

func job(t *testing.T, r Rendered, name string) *batchv1.Job {
	t.Helper()
	for _, d := range r.Core {
		if j, ok := d.Object.(*batchv1.Job); ok && j.Name == name {
			return j
		}
	}
	t.Fatalf("no Job %s rendered", name)
	return nil
}

// TestMigrationJob: a pre-install/pre-upgrade hook running the ko-built
// migrate command straight against PostgreSQL, Vault's agent only as a
// first init container (a sidecar would never let the Job finish); with a
// roles script in the chart, `migrate up` becomes the init step and
// `migrate roles` applies the script from the hook's ConfigMap.
func TestMigrationJob(t *testing.T) {
	check := func(t *testing.T, r Rendered, wantRoles string) {
		j := job(t, r, "coffeebuddy-migrate")
		if !strings.Contains(j.Annotations["helm.sh/hook"], "pre-install") || !strings.Contains(j.Annotations["helm.sh/hook"], "pre-upgrade") {
			t.Errorf("migrate Job hook %q, want pre-install,pre-upgrade", j.Annotations["helm.sh/hook"])
		}
		a := j.Spec.Template.Annotations
		if a["vault.hashicorp.com/agent-pre-populate-only"] != "true" || a["vault.hashicorp.com/agent-init-first"] != "true" {
			t.Errorf("migrate Job Vault annotations %v: want pre-populate-only and init-first", a)
		}
		spec := j.Spec.Template.Spec
		var steps [][]string
		for _, c := range append(slices.Clone(spec.InitContainers), spec.Containers...) {
			if !strings.HasSuffix(c.Image, "/migrate:0.1.0") && c.Image != "ko://github.com/coffeebuddy/coffeebuddy/shared/cmd/migrate" && !strings.Contains(c.Image, "/migrate:") {
				t.Errorf("migrate Job image %s: want ko's build of shared/cmd/migrate", c.Image)
			}
			steps = append(steps, c.Args)
		}
		cm := configMaps(r)["coffeebuddy/coffeebuddy-migrate"]
		for _, d := range r.Core {
			if d.Name == "coffeebuddy-migrate" && !strings.Contains(d.Hook, "pre-install") {
				t.Errorf("%s %s: hook %q, want it there before the Job (pre-install)", d.Kind, d.Name, d.Hook)
			}
		}
		if wantRoles == "" {
			if !reflect.DeepEqual(steps, [][]string{{"up"}}) {
				t.Errorf("migrate Job steps %v, want [[up]]", steps)
			}
			if _, ok := cm.Data["roles.sql"]; ok {
				t.Error("roles.sql in the ConfigMap without a roles script in the chart")
			}
			return
		}
		if !reflect.DeepEqual(steps, [][]string{{"up"}, {"roles", "/etc/coffeebuddy/roles.sql"}}) {
			t.Errorf("migrate Job steps %v, want [[up] [roles /etc/coffeebuddy/roles.sql]]", steps)
		}
		if cm.Data["roles.sql"] != wantRoles {
			t.Errorf("roles.sql in the ConfigMap %q, want the script %q", cm.Data["roles.sql"], wantRoles)
		}
	}
	t.Run("chart as committed", func(t *testing.T) {
		want := ""
		if b, err := os.ReadFile("../postgres/roles.sql"); err == nil {
			want = string(b)
		}
		check(t, render(t, renderCases[0]), want)
	})
	t.Run("with a roles script", func(t *testing.T) {
		script := "-- roles\nDO $$ BEGIN CREATE ROLE x NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$;\n"
		f := filepath.Join(t.TempDir(), "roles.sql")
		os.WriteFile(f, []byte(script), 0o644)
		chart := genChart(t, "-roles", f)
		out, err := helmTemplate(t, chart)
		if err != nil {
			t.Fatal(err)
		}
		check(t, decodeRendered(t, "with roles", out), script)
	})
}

// TestObservabilityRendered: when deploy/observability lands (another
// branch), make chart copies it and the chart turns each file into the
// object its consumer reads; the values switches turn them off.
func TestObservabilityRendered(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"coffeebuddy-dashboard.json": `{"title": "CoffeeBuddy", "panels": []}`,
		"alerts.rules.yaml": `groups:
  - name: coffeebuddy
    rules:
      - alert: SlackIngressDown
        expr: up{job="slack-ingress"} == 0
        for: 5m
        labels:
          severity: page
        annotations:
          runbook_url: docs/runbooks/slack-ingress-down.md
`,
		"servicemonitor-like.yaml": `apiVersion: v1
kind: ConfigMap
metadata:
  name: coffeebuddy-extra
data:
  a: b
`,
		"fluent-bit.yaml": "pipeline:\n  inputs:\n    - name: tail\n",
	}
	for f, body := range files {
		os.WriteFile(filepath.Join(dir, f), []byte(body), 0o644)
	}
	chart := genChart(t, "-observability", dir)
	out, err := helmTemplate(t, chart)
	if err != nil {
		t.Fatal(err)
	}
	r := decodeRendered(t, "observability", out)
	if len(r.Rules) != 1 || r.Rules[0].Spec.Groups[0].Rules[0].Alert != "SlackIngressDown" || r.Rules[0].Metadata.Namespace != "coffeebuddy" {
		t.Errorf("PrometheusRules %+v: want the alerts file's group in namespace coffeebuddy", r.Rules)
	}
	cms := configMaps(r)
	dash := cms["coffeebuddy/coffeebuddy-coffeebuddy-dashboard"]
	if dash == nil || dash.Labels["grafana_dashboard"] != "1" || strings.TrimSpace(dash.Data["coffeebuddy-dashboard.json"]) != files["coffeebuddy-dashboard.json"] {
		t.Errorf("dashboard ConfigMap %+v: want the JSON verbatim with grafana_dashboard=1", dash)
	}
	if extra := cms["coffeebuddy/coffeebuddy-extra"]; extra == nil || extra.Labels["app.kubernetes.io/part-of"] != "coffeebuddy" {
		t.Errorf("a Kubernetes object file: %+v, want it as it is, in namespace coffeebuddy, with the chart's labels", extra)
	}
	if fb := cms["coffeebuddy/coffeebuddy-fluent-bit"]; fb == nil || fb.Data["fluent-bit.yaml"] != files["fluent-bit.yaml"] {
		t.Errorf("Fluent Bit configuration ConfigMap %+v: want the file verbatim", fb)
	}

	off, err := helmTemplate(t, chart, "--set", "observability.enabled=false")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(off, []byte("PrometheusRule")) || bytes.Contains(off, []byte("grafana_dashboard")) {
		t.Error("observability.enabled=false still renders monitoring objects")
	}
	partial, err := helmTemplate(t, chart, "--set", "observability.dashboards.enabled=false")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(partial, []byte("grafana_dashboard")) || !bytes.Contains(partial, []byte("PrometheusRule")) {
		t.Error("observability.dashboards.enabled=false: want rules without dashboards")
	}
}

// TestNoSecretInValues: values files reference Vault paths and Secret names,
// never secret material.
func TestNoSecretInValues(t *testing.T) {
	files, _ := filepath.Glob(chartDir + "/values*.yaml")
	bad := regexp.MustCompile(`(?i)xox[bpas]-|-----BEGIN|(password|secret|token)\s*:\s*["']?[^"'\s{]`)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(strings.TrimSpace(l), "#") {
				continue
			}
			if bad.MatchString(l) {
				t.Errorf("%s:%d looks like a secret: %s", f, i+1, l)
			}
		}
	}
}
