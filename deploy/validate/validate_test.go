package validate

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	kafkasources "knative.dev/eventing-kafka-broker/control-plane/pkg/apis/sources/v1"
	eventingv1 "knative.dev/eventing/pkg/apis/eventing/v1"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"
)

// manifestGlobs are the manifests deployed to the cluster.
var manifestGlobs = []string{"../../eventing/*.yaml", "../knative/*.yaml"}

func loadAll(t *testing.T) []Doc {
	t.Helper()
	var docs []Doc
	for _, g := range manifestGlobs {
		files, err := filepath.Glob(g)
		if err != nil {
			t.Fatal(err)
		}
		if len(files) == 0 {
			t.Fatalf("no manifests match %s", g)
		}
		for _, f := range files {
			ds, err := DecodeFile(f)
			if err != nil {
				t.Errorf("%v", err)
				continue
			}
			if len(ds) == 0 {
				t.Errorf("%s: no objects", f)
			}
			docs = append(docs, ds...)
		}
	}
	return docs
}

func TestManifestsValidate(t *testing.T) {
	docs := loadAll(t)
	kinds := map[string]int{}
	for _, d := range docs {
		kinds[d.Kind]++
		errs, warns := Check(ClusterContext(), d)
		if errs != nil {
			t.Errorf("%s: invalid: %v", d, errs)
		}
		if warns != nil {
			t.Logf("%s: warnings: %v", d, warns)
			// The restrictive securityContext is there to silence the
			// webhook's insecure-default warnings: keep it that way.
			if d.Kind == "Service" {
				t.Errorf("%s: Service has warnings (securityContext not restrictive enough?): %v", d, warns)
			}
		}
	}
	for _, k := range []string{"Broker", "Trigger", "PingSource", "KafkaSource", "KafkaSink", "Service"} {
		if kinds[k] == 0 {
			t.Errorf("no %s among the manifests", k)
		}
	}
	t.Logf("validated %d objects: %v", len(docs), kinds)
}

// TestReferencesResolve checks what no single object's validation can:
// every ref points at an object defined in the manifests.
func TestReferencesResolve(t *testing.T) {
	checkReferences(t, loadAll(t))
}

// checkReferences checks that every Trigger, Broker and KafkaSource ref in
// docs points at an object of docs, that every Service's env fits its
// function's Needs, its image and ServiceAccount follow the naming, and that
// there is one Service per function folder.
func checkReferences(t *testing.T, docs []Doc) {
	t.Helper()
	defined := map[string]bool{}
	for _, d := range docs {
		defined[d.Kind+"/"+d.Object.GetNamespace()+"/"+d.Object.GetName()] = true
	}
	need := func(from Doc, what, kind, ns, name string) {
		if ns == "" {
			ns = from.Object.GetNamespace()
		}
		if !defined[kind+"/"+ns+"/"+name] {
			t.Errorf("%s: %s refers to %s %s/%s, which no manifest defines", from, what, kind, ns, name)
		}
	}
	var services []string
	for _, d := range docs {
		switch o := d.Object.(type) {
		case *eventingv1.Trigger:
			need(d, "spec.broker", "Broker", "", o.Spec.Broker)
			if r := o.Spec.Subscriber.Ref; r != nil {
				need(d, "spec.subscriber", r.Kind, r.Namespace, r.Name)
			} else {
				t.Errorf("%s: subscriber is not a ref", d)
			}
			if o.Spec.Delivery == nil || o.Spec.Delivery.DeadLetterSink == nil || o.Spec.Delivery.DeadLetterSink.Ref == nil {
				t.Errorf("%s: no dead-letter sink ref", d)
			} else {
				r := o.Spec.Delivery.DeadLetterSink.Ref
				need(d, "spec.delivery.deadLetterSink", r.Kind, r.Namespace, r.Name)
			}
		case *eventingv1.Broker:
			if o.Spec.Delivery != nil && o.Spec.Delivery.DeadLetterSink != nil && o.Spec.Delivery.DeadLetterSink.Ref != nil {
				r := o.Spec.Delivery.DeadLetterSink.Ref
				need(d, "spec.delivery.deadLetterSink", r.Kind, r.Namespace, r.Name)
			}
		case *kafkasources.KafkaSource:
			if r := o.Spec.Sink.Ref; r != nil {
				need(d, "spec.sink", r.Kind, r.Namespace, r.Name)
			}
		case *servingv1.Service:
			services = append(services, o.Name)
			checkEnvMatchesNeeds(t, d.String(), o)
			// Images are built by ko from the function of the same name:
			// its import path (ko resolve), or <registry>/<name>:<tag> as
			// ko build --base-import-paths publishes it.
			img := o.Spec.Template.Spec.Containers[0].Image
			want := "ko://github.com/coffeebuddy/coffeebuddy/functions/" + o.Name
			if img != want && !regexp.MustCompile(`^[^\s:]+(:\d+)?/`+regexp.QuoteMeta(o.Name)+`:[\w.-]+$`).MatchString(img) {
				t.Errorf("%s: image %s, want %s or <registry>/%s:<tag>", d, img, want, o.Name)
			}
			if sa := o.Spec.Template.Spec.ServiceAccountName; sa != "coffeebuddy-"+o.Name {
				t.Errorf("%s: serviceAccountName %q, want coffeebuddy-%s", d, sa, o.Name)
			}
		}
	}
	// One Knative Service per function folder, and no Service without one.
	slices.Sort(services)
	if want := functionNames(t); len(want) == 0 || !slices.Equal(services, want) {
		t.Errorf("Services %v, want one per function folder %v", services, want)
	}
}

// functionNames lists the function folders (those with a func.yaml).
func functionNames(t *testing.T) []string {
	t.Helper()
	funcs, err := filepath.Glob("../../functions/*/func.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, f := range funcs {
		want = append(want, filepath.Base(filepath.Dir(f)))
	}
	slices.Sort(want)
	return want
}

// TestDeliveryOrder checks ADR 0012 as the cluster reads it: every Trigger
// states its delivery order (the Kafka Broker's default is unordered, so an
// omission would silently change behaviour), only with the values the
// Kafka Broker's reconciler takes, and ordered Triggers get a key's events
// in order only if the KafkaSource feeding the Broker is ordered too.
func TestDeliveryOrder(t *testing.T) {
	const annotation = "kafka.eventing.knative.dev/delivery.order"
	var ordered []string
	sourceOrdered := map[string]bool{}
	for _, d := range loadAll(t) {
		switch o := d.Object.(type) {
		case *eventingv1.Trigger:
			v, ok := o.Annotations[annotation]
			switch {
			case !ok:
				t.Errorf("%s: no %s annotation", d, annotation)
			case v == "ordered":
				ordered = append(ordered, o.Name)
			case v != "unordered":
				t.Errorf("%s: %s = %q, want ordered or unordered", d, annotation, v)
			}
		case *kafkasources.KafkaSource:
			o.SetDefaults(context.Background())
			sourceOrdered[o.Name] = o.Spec.Ordering != nil && *o.Spec.Ordering == kafkasources.Ordered
		}
	}
	slices.Sort(ordered)
	if want := []string{"order-confirm", "order-place"}; !slices.Equal(ordered, want) {
		t.Errorf("ordered Triggers %v, want %v (ADR 0012)", ordered, want)
	}
	for name, ok := range sourceOrdered {
		if !ok {
			t.Errorf("KafkaSource %s is not ordered, so no Trigger can be", name)
		}
	}
	if len(sourceOrdered) == 0 {
		t.Error("no KafkaSource among the manifests")
	}
}

// TestValidationCanFail proves the checks bite: each of these must be
// rejected, by strict decoding or by Knative's validation.
func TestValidationCanFail(t *testing.T) {
	const trigger = `apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata:
  name: bad
  namespace: coffeebuddy
spec:
  broker: coffeebuddy
  filter:
    attributes:
      type: com.coffeebuddy.command.coffee
  delivery:
    retry: 3
    backoffPolicy: exponential
    backoffDelay: %s
  subscriber:
    ref:
      apiVersion: serving.knative.dev/v1
      kind: Service
      name: run-start
`
	const service = `apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: bad
  namespace: coffeebuddy
spec:
  template:
    metadata:
      annotations:
        autoscaling.knative.dev/min-scale: "%s"
    spec:
      containerConcurrency: %s
      containers:
        - image: ko://github.com/coffeebuddy/coffeebuddy/functions/run-start
%s`
	tests := []struct {
		name, yaml, want string
	}{
		{"trigger backoffDelay not ISO-8601", fill(trigger, "200ms"), "backoffDelay"},
		{"trigger backoffDelay garbage", fill(trigger, "PT0.2"), "backoffDelay"},
		{"service negative containerConcurrency", fill(service, "1", "-1", ""), "containerConcurrency"},
		{"service bad min-scale", fill(service, "lots", "10", ""), "min-scale"},
		{"service reserved PORT env", fill(service, "1", "10", "          env:\n            - name: PORT\n              value: \"9090\"\n"), "PORT"},
		{"service privileged securityContext", fill(service, "1", "10", "          securityContext:\n            privileged: true\n"), "privileged"},
		{"service unknown field", fill(service, "1", "10", "          replicas: 3\n"), "replicas"},
		{"trigger duplicate key", strings.Replace(fill(trigger, "PT0.2S"), "  broker: coffeebuddy\n", "  broker: coffeebuddy\n  broker: other\n", 1), "broker"},
		{"unknown kind", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n", "unknown apiVersion/kind"},
		{"pingsource @every", `apiVersion: sources.knative.dev/v1
kind: PingSource
metadata:
  name: bad
  namespace: coffeebuddy
spec:
  schedule: "@every 1m"
  sink:
    ref:
      apiVersion: eventing.knative.dev/v1
      kind: Broker
      name: coffeebuddy
`, "schedule"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkBytes(tt.yaml)
			if err == nil {
				t.Fatalf("accepted:\n%s", tt.yaml)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("rejected, but not for %q: %v", tt.want, err)
			}
			t.Logf("rejected: %v", err)
		})
	}
}

func fill(tmpl string, vals ...string) string {
	for _, v := range vals {
		tmpl = strings.Replace(tmpl, "%s", v, 1)
	}
	return tmpl
}

// checkBytes decodes and validates one document as TestManifestsValidate
// does.
func checkBytes(y string) error {
	docs, err := Decode("inline.yaml", []byte(y))
	if err != nil {
		return err
	}
	for _, d := range docs {
		if errs, _ := Check(context.Background(), d); errs != nil {
			return errs
		}
	}
	return nil
}

// TestInsecureServiceWarns proves TestManifestsValidate's warning check
// bites: without the restrictive securityContext Knative warns.
func TestInsecureServiceWarns(t *testing.T) {
	docs, err := Decode("inline.yaml", []byte(`apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: lax
  namespace: coffeebuddy
spec:
  template:
    spec:
      containers:
        - image: ko://github.com/coffeebuddy/coffeebuddy/functions/run-start
`))
	if err != nil {
		t.Fatal(err)
	}
	errs, warns := Check(context.Background(), docs[0])
	if errs != nil {
		t.Fatalf("errors: %v", errs)
	}
	if warns == nil || !strings.Contains(warns.Error(), "runAsNonRoot") {
		t.Fatalf("warnings = %v, want the insecure-default securityContext warnings", warns)
	}
}

// needsRE finds a function's declared dependencies in its main.go.
var needsRE = regexp.MustCompile(`Needs:\s*function\.Needs\{([^}]*)\}`)

// checkEnvMatchesNeeds fails when a Service lacks the configuration its
// function needs to start: the runtime refuses to run without DATABASE_URL
// for Needs.DB, and without KAFKA_BROKERS for Needs.Kafka or Needs.Slack
// (Slack calls buffer rate-limited retries in Kafka).
func checkEnvMatchesNeeds(t *testing.T, where string, svc *servingv1.Service) {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("..", "..", "functions", svc.Name, "main.go"))
	if err != nil {
		return // the function-folder check reports a Service without a function
	}
	m := needsRE.FindSubmatch(src)
	if m == nil {
		t.Errorf("%s: functions/%s/main.go declares no function.Needs", where, svc.Name)
		return
	}
	needs := string(m[1])
	env := map[string]bool{}
	for _, e := range svc.Spec.Template.Spec.Containers[0].Env {
		env[e.Name] = true
	}
	want := map[string]bool{}
	if strings.Contains(needs, "DB: true") {
		want["DATABASE_URL"] = true
	}
	if strings.Contains(needs, "Kafka: true") || strings.Contains(needs, "Slack: true") {
		want["KAFKA_BROKERS"] = true
	}
	if strings.Contains(needs, "Slack: true") {
		want["SLACK_BOT_TOKEN_FILE"] = true
		want["SLACK_SIGNING_SECRET_FILE"] = true
	}
	for name := range want {
		if !env[name] {
			t.Errorf("%s: Service %s needs %s (function.Needs{%s}) but does not set it", where, svc.Name, name, strings.TrimSpace(needs))
		}
	}
	// And nothing it does not need: a database URL, broker list or Slack
	// secret a function never reads is access it should not have.
	db := strings.Contains(needs, "DB: true")
	slack := strings.Contains(needs, "Slack: true")
	kafka := strings.Contains(needs, "Kafka: true") || slack
	for name, ok := range map[string]bool{
		"DATABASE_URL": db, "PGPASSFILE": db, "DATABASE_MAX_CONNS": db,
		"KAFKA_BROKERS":             kafka,
		"SLACK_BOT_TOKEN_FILE":      slack,
		"SLACK_SIGNING_SECRET_FILE": slack,
		"SLACK_API_URL":             slack,
	} {
		if env[name] && !ok {
			t.Errorf("%s: Service %s sets %s, which function.Needs{%s} does not ask for", where, svc.Name, name, strings.TrimSpace(needs))
		}
	}
	if (svc.Spec.Template.Annotations["vault.hashicorp.com/agent-inject-secret-slack-bot-token"] != "") != slack {
		t.Errorf("%s: Service %s: Vault Slack secrets %v, but Needs.Slack is %v", where, svc.Name, !slack, slack)
	}
	if (svc.Spec.Template.Annotations["vault.hashicorp.com/agent-inject-secret-pgpass"] != "") != db {
		t.Errorf("%s: Service %s: Vault database credentials %v, but Needs.DB is %v", where, svc.Name, !db, db)
	}
	checkOwnEnv(t, where, svc, env)
}

// checkOwnEnv covers what a function reads beyond Needs: one that verifies
// OIDC tokens (imports shared/oidcauth) refuses every request without an
// issuer, and must name an audience or skip its check explicitly; the
// audit API's cursor key must come from a file (Vault), or cursors break
// across replicas and restarts.
func checkOwnEnv(t *testing.T, where string, svc *servingv1.Service, env map[string]bool) {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join("..", "..", "functions", svc.Name, "*.go"))
	var src strings.Builder
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		src.Write(b)
	}
	if strings.Contains(src.String(), `"github.com/coffeebuddy/coffeebuddy/shared/oidcauth"`) {
		if !env["OIDC_ISSUER_URL"] {
			t.Errorf("%s: Service %s verifies OIDC tokens but does not set OIDC_ISSUER_URL", where, svc.Name)
		}
		if !env["OIDC_AUDIENCE"] && !env["OIDC_SKIP_AUDIENCE_CHECK"] {
			t.Errorf("%s: Service %s verifies OIDC tokens but sets neither OIDC_AUDIENCE nor OIDC_SKIP_AUDIENCE_CHECK", where, svc.Name)
		}
	}
	if strings.Contains(src.String(), `"AUDIT_CURSOR_KEY"`) && !env["AUDIT_CURSOR_KEY_FILE"] {
		t.Errorf("%s: Service %s signs cursors but does not set AUDIT_CURSOR_KEY_FILE", where, svc.Name)
	}
	oidc := strings.Contains(src.String(), `"github.com/coffeebuddy/coffeebuddy/shared/oidcauth"`)
	for name, ok := range map[string]bool{
		"OIDC_ISSUER_URL": oidc, "OIDC_AUDIENCE": oidc, "OIDC_REQUIRED_SCOPE": oidc,
		"AUDIT_CURSOR_KEY_FILE": strings.Contains(src.String(), `"AUDIT_CURSOR_KEY"`),
		"SLACK_USER_RATE_LIMIT": strings.Contains(src.String(), `"SLACK_USER_RATE_LIMIT"`),
		"COFFEE_LAST_CALL":      strings.Contains(src.String(), "Config.LastCall"),
		"COFFEE_WARN_BEFORE":    strings.Contains(src.String(), "Config.WarnBefore"),
		"COFFEE_REMIND_AFTER":   strings.Contains(src.String(), "Config.RemindAfter"),
	} {
		if env[name] != ok {
			t.Errorf("%s: Service %s: %s set = %v, but its code reads it = %v", where, svc.Name, name, env[name], ok)
		}
	}
}
