package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

const root = "../../.."

func helmBin(t *testing.T) string {
	t.Helper()
	h := os.Getenv("HELM_BIN")
	if h == "" {
		h = filepath.Join(root, ".tmp", "bin", "helm")
	}
	if _, err := os.Stat(h); err != nil {
		t.Fatalf("helm not found at %s: run `bash .ci/ensure-helm` (make test does) or set HELM_BIN", h)
	}
	abs, err := filepath.Abs(h)
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

// generatedFiles lists, relative to base, every file the generator owns there.
func generatedFiles(t *testing.T, base string) []string {
	t.Helper()
	var out []string
	for _, d := range GeneratedDirs {
		filepath.WalkDir(filepath.Join(base, d), func(p string, e os.DirEntry, err error) error {
			if err == nil && !e.IsDir() {
				rel, _ := filepath.Rel(base, p)
				out = append(out, filepath.ToSlash(rel))
			}
			return nil
		})
	}
	for _, f := range GeneratedFiles {
		if _, err := os.Stat(filepath.Join(base, f)); err == nil {
			out = append(out, f)
		}
	}
	for _, glob := range []string{GeneratedKnative, GeneratedWorkloads} {
		ks, err := filepath.Glob(filepath.Join(base, glob))
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range ks {
			rel, _ := filepath.Rel(base, k)
			out = append(out, filepath.ToSlash(rel))
		}
	}
	slices.Sort(out)
	return out
}

// TestChartUpToDate regenerates everything the generator owns into a
// temporary copy and fails on any difference with the repository: an edit
// to eventing/*.yaml, the topic catalog, a function's Needs, deploy/kong,
// deploy/postgres/roles.sql or deploy/observability without `make chart`,
// a hand edit of a generated file, or a stale one.
func TestChartUpToDate(t *testing.T) {
	out := t.TempDir()
	if err := run(root, out, helmBin(t), "", "", true); err != nil {
		t.Fatal(err)
	}
	want, got := generatedFiles(t, out), generatedFiles(t, root)
	if !slices.Equal(want, got) {
		t.Errorf("generated files differ (run make chart):\nin the repository: %v\nregenerated:       %v", got, want)
	}
	for _, f := range want {
		a, err := os.ReadFile(filepath.Join(out, f))
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			continue // reported above
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs from what make chart generates (run make chart; edit its source, not it)", f)
		}
	}
	if len(want) < 30 {
		t.Errorf("only %d generated files: %v", len(want), want)
	}
}

// TestBuildSettingsAgree: the images the chart names are ko's builds of the
// functions, built the way DESIGN.md §7 asks (static, -trimpath, stripped),
// and func.yaml says nothing to the contrary: no other builder, the same
// CGO_ENABLED=0, the same registry as the chart, no scale or resources of
// its own (those are the chart's values).
func TestBuildSettingsAgree(t *testing.T) {
	fns, err := LoadFunctions(filepath.Join(root, "functions"))
	if err != nil {
		t.Fatal(err)
	}
	var ko struct {
		DefaultBaseImage string `json:"defaultBaseImage"`
		Builds           []struct {
			ID      string   `json:"id"`
			Dir     string   `json:"dir"`
			Main    string   `json:"main"`
			Env     []string `json:"env"`
			Flags   []string `json:"flags"`
			Ldflags []string `json:"ldflags"`
		} `json:"builds"`
	}
	raw, err := os.ReadFile(filepath.Join(root, KoConfig))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(raw, &ko); err != nil {
		t.Fatalf(".ko.yaml: %v", err)
	}
	if !strings.HasSuffix(ko.DefaultBaseImage, ":nonroot") {
		t.Errorf(".ko.yaml defaultBaseImage %q: want a nonroot image (the Services run as uid 65532)", ko.DefaultBaseImage)
	}
	builds := map[string]int{}
	for i, b := range ko.Builds {
		builds[b.ID] = i
		if !slices.Contains(b.Env, "CGO_ENABLED=0") || !slices.Contains(b.Flags, "-trimpath") ||
			!slices.Contains(b.Ldflags, "-s") || !slices.Contains(b.Ldflags, "-w") {
			t.Errorf(".ko.yaml build %s: env %v flags %v ldflags %v; want CGO_ENABLED=0, -trimpath, -s -w", b.ID, b.Env, b.Flags, b.Ldflags)
		}
		if _, err := os.Stat(filepath.Join(root, b.Dir, b.Main)); err != nil {
			t.Errorf(".ko.yaml build %s: %s/%s: %v", b.ID, b.Dir, b.Main, err)
		}
	}
	var values struct {
		Image struct {
			Registry string `json:"registry"`
		} `json:"image"`
	}
	vraw, err := os.ReadFile(filepath.Join(root, ChartDir, "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(vraw, &values); err != nil {
		t.Fatal(err)
	}
	check := func(where string, fy FuncYAML) {
		if fy.Build.Builder != "" {
			t.Errorf("%s: build.builder %q: images are built by ko (.ko.yaml), say no other builder", where, fy.Build.Builder)
		}
		var envs []string
		for _, e := range fy.Build.BuildEnvs {
			envs = append(envs, e.Name+"="+e.Value)
		}
		if !slices.Equal(envs, []string{"CGO_ENABLED=0"}) {
			t.Errorf("%s: build.buildEnvs %v, want [CGO_ENABLED=0] as in .ko.yaml", where, envs)
		}
		if fy.Registry != values.Image.Registry {
			t.Errorf("%s: registry %q, but the chart's image.registry is %q", where, fy.Registry, values.Image.Registry)
		}
		if _, ok := fy.Deploy["options"]; ok {
			t.Errorf("%s: deploy.options: scale and resources are the chart's values (deploy/helm/coffeebuddy/values.yaml), not func.yaml's", where)
		}
		if fy.Runtime != "go" {
			t.Errorf("%s: runtime %q, want go", where, fy.Runtime)
		}
	}
	var tmpl FuncYAML
	if raw, err := os.ReadFile(filepath.Join(root, "func.yaml")); err != nil {
		t.Fatal(err)
	} else if err := yaml.Unmarshal(raw, &tmpl); err != nil {
		t.Fatal(err)
	}
	check("func.yaml", tmpl)
	for _, f := range fns {
		check("functions/"+f.Name+"/func.yaml", f.FuncYAML)
		i, ok := builds[f.Name]
		if !ok {
			t.Errorf(".ko.yaml has no build for %s (run make chart)", f.Name)
			continue
		}
		if b := ko.Builds[i]; b.Dir != "./functions/"+f.Name || b.Main != "." {
			t.Errorf(".ko.yaml build %s: dir %s main %s", f.Name, b.Dir, b.Main)
		}
	}
	if _, ok := builds["migrate"]; !ok {
		t.Error(".ko.yaml has no build for the migrate command (the migration Job's image)")
	}
	if len(builds) != len(fns)+1 {
		t.Errorf(".ko.yaml has %d builds, want one per function (%d) and migrate", len(builds), len(fns))
	}
}

// TestEventingTemplateRefuses: a manifest the rules do not understand is an
// error, not a template with a stale constant.
func TestEventingTemplateRefuses(t *testing.T) {
	for name, src := range map[string]string{
		"template braces": "apiVersion: v1\nkind: Trigger\nmetadata:\n  name: '{{ x }}'\n",
		"source without consumerGroup": `apiVersion: sources.knative.dev/v1
kind: KafkaSource
metadata:
  name: s
spec:
  bootstrapServers:
    - a:9092
`,
		"sink without bootstrapServers": "apiVersion: eventing.knative.dev/v1alpha1\nkind: KafkaSink\nmetadata:\n  name: s\nspec:\n  topic: t\n",
		"broker config with something else": `apiVersion: eventing.knative.dev/v1
kind: Broker
metadata:
  name: b
spec:
  config:
    apiVersion: v1
    kind: ConfigMap
    name: c
    namespace: n
    extra: x
`,
		"broker without config": "apiVersion: eventing.knative.dev/v1\nkind: Broker\nmetadata:\n  name: b\n",
	} {
		if out, err := EventingTemplate("x.yaml", []byte(src)); err == nil {
			t.Errorf("%s: accepted:\n%s", name, out)
		}
	}
}

// TestOptionalSources: deploy/observability and deploy/postgres/roles.sql
// are copied into the chart when they exist and leave nothing when not.
func TestOptionalSources(t *testing.T) {
	src := t.TempDir()
	obs := filepath.Join(src, "observability")
	os.MkdirAll(obs, 0o755)
	for f, body := range map[string]string{
		"coffeebuddy.json":          `{"title": "CoffeeBuddy"}`,
		"alerts.yaml":               "groups: []\n",
		"notes.txt":                 "not copied\n",
		"fluent-bit.yml":            "service: {}\n",
		"grafana/board.json":        `{"title": "Board"}`,
		"prometheus/rules.yml":      "groups: []\n",
		"prometheus/rules_test.yml": "tests: []\n",
		"elasticsearch/policy.json": "{}",
		"fluent-bit/parsers.conf":   "[PARSER]\n",
		"grafana/deeper/skip.json":  "{}",
		"roles-ignored.sql":         "",
	} {
		p := filepath.Join(obs, f)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte(body), 0o644)
	}
	roles := filepath.Join(src, "roles.sql")
	os.WriteFile(roles, []byte("SELECT 1;\n"), 0o644)

	out := t.TempDir()
	if err := run(root, out, "", obs, roles, false); err != nil {
		t.Fatal(err)
	}
	got, _ := filepath.Glob(filepath.Join(out, ChartDir, "files", "observability", "*"))
	var names []string
	for _, g := range got {
		names = append(names, filepath.Base(g))
	}
	// Subfolders one level down, as <folder>-<file>; the plain rules file,
	// its tests and Elasticsearch's files are not cluster objects.
	if want := []string{"alerts.yaml", "coffeebuddy.json", "fluent-bit-parsers.conf", "fluent-bit.yml", "grafana-board.json"}; !slices.Equal(names, want) {
		t.Errorf("files/observability: %v, want %v", names, want)
	}
	if b, err := os.ReadFile(filepath.Join(out, ChartDir, "files", "postgres", "roles.sql")); err != nil || string(b) != "SELECT 1;\n" {
		t.Errorf("files/postgres/roles.sql: %q, %v", b, err)
	}

	// Gone at the source: gone from the chart.
	out2 := t.TempDir()
	if err := run(root, out2, "", filepath.Join(src, "missing"), filepath.Join(src, "missing.sql"), false); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"files/observability", "files/postgres"} {
		if _, err := os.Stat(filepath.Join(out2, ChartDir, d)); !os.IsNotExist(err) {
			t.Errorf("%s exists without its source: %v", d, err)
		}
	}
}
