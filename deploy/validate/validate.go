// Package validate checks CoffeeBuddy's Knative manifests (eventing/ and
// deploy/knative/) with Knative's own Go API types: strict decoding,
// SetDefaults and Validate, as the API server's admission webhooks would.
//
// It is a test-only module: nothing may import it, so the heavy Knative and
// Kubernetes dependencies stay out of every function's binary.
package validate

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	kafkasinks "knative.dev/eventing-kafka-broker/control-plane/pkg/apis/eventing/v1alpha1"
	kafkasources "knative.dev/eventing-kafka-broker/control-plane/pkg/apis/sources/v1"
	eventingv1 "knative.dev/eventing/pkg/apis/eventing/v1"
	sourcesv1 "knative.dev/eventing/pkg/apis/sources/v1"
	"knative.dev/pkg/apis"
	servingcfg "knative.dev/serving/pkg/apis/config"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"
	"sigs.k8s.io/yaml"
)

// Object is a Knative resource the webhooks default and validate.
type Object interface {
	apis.Defaultable
	apis.Validatable
	GetName() string
	GetNamespace() string
}

// Doc is one YAML document of a manifest file, decoded.
type Doc struct {
	File       string
	Index      int // 1-based position in the file
	APIVersion string
	Kind       string
	Name       string
	Object     Object
}

func (d Doc) String() string {
	return fmt.Sprintf("%s (document %d) %s %s %q", d.File, d.Index, d.APIVersion, d.Kind, d.Name)
}

// newObject returns an empty typed object for apiVersion/kind, or nil.
func newObject(apiVersion, kind string) Object {
	switch apiVersion + ", " + kind {
	case "eventing.knative.dev/v1, Broker":
		return &eventingv1.Broker{}
	case "eventing.knative.dev/v1, Trigger":
		return &eventingv1.Trigger{}
	case "sources.knative.dev/v1, PingSource":
		return &sourcesv1.PingSource{}
	case "sources.knative.dev/v1, KafkaSource":
		return &kafkasources.KafkaSource{}
	case "eventing.knative.dev/v1alpha1, KafkaSink":
		return &kafkasinks.KafkaSink{}
	case "serving.knative.dev/v1, Service":
		return &servingv1.Service{}
	}
	return nil
}

// DecodeFile strictly decodes every YAML document in file into its Knative
// type. Unknown kinds, unknown or duplicate fields and type mismatches are
// errors.
func DecodeFile(file string) ([]Doc, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	return Decode(file, b)
}

// Decode is DecodeFile for bytes already read; file names the source in
// errors.
func Decode(file string, b []byte) ([]Doc, error) {
	var out []Doc
	for i, raw := range splitDocs(b) {
		d := Doc{File: file, Index: i + 1}
		var tm struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Metadata   struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal(raw, &tm); err != nil {
			return nil, fmt.Errorf("%s: %w", d, err)
		}
		d.APIVersion, d.Kind, d.Name = tm.APIVersion, tm.Kind, tm.Metadata.Name
		obj := newObject(tm.APIVersion, tm.Kind)
		if obj == nil {
			return nil, fmt.Errorf("%s: unknown apiVersion/kind", d)
		}
		j, err := yaml.YAMLToJSONStrict(raw) // rejects duplicate keys
		if err != nil {
			return nil, fmt.Errorf("%s: %w", d, err)
		}
		dec := json.NewDecoder(bytes.NewReader(j))
		dec.DisallowUnknownFields()
		if err := dec.Decode(obj); err != nil {
			return nil, fmt.Errorf("%s: strict decode: %w", d, err)
		}
		d.Object = obj
		out = append(out, d)
	}
	return out, nil
}

// RequiredServingFeatures are the Knative Serving feature flags
// (knative-serving/config-features) a cluster must set for CoffeeBuddy's
// Services: slack-ingress spreads its replicas over nodes. deploy/README.md
// lists them among the prerequisites.
var RequiredServingFeatures = map[string]string{
	"kubernetes.podspec-topologyspreadconstraints": "enabled",
}

// ClusterContext is the context Knative's webhooks validate with on a
// cluster set up as deploy/README.md says: RequiredServingFeatures on,
// every other setting at its default.
func ClusterContext() context.Context {
	f, err := servingcfg.NewFeaturesConfigFromMap(RequiredServingFeatures)
	if err != nil {
		panic(fmt.Sprintf("validate: RequiredServingFeatures: %v", err))
	}
	return servingcfg.ToContext(context.Background(), &servingcfg.Config{Features: f})
}

// Check defaults and validates d.Object as on creation and returns the
// error-level problems (nil when valid) and the warnings.
func Check(ctx context.Context, d Doc) (errs, warnings *apis.FieldError) {
	d.Object.SetDefaults(ctx)
	fe := d.Object.Validate(apis.WithinCreate(ctx))
	if fe == nil {
		return nil, nil
	}
	return fe.Filter(apis.ErrorLevel), fe.Filter(apis.WarningLevel)
}

// splitDocs splits a YAML stream on "---" lines, dropping empty and
// comment-only documents.
func splitDocs(b []byte) [][]byte {
	var docs [][]byte
	var cur bytes.Buffer
	flush := func() {
		for _, l := range strings.Split(cur.String(), "\n") {
			if t := strings.TrimSpace(l); t != "" && !strings.HasPrefix(t, "#") {
				docs = append(docs, bytes.Clone(cur.Bytes()))
				break
			}
		}
		cur.Reset()
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 64*1024), 16*1024*1024)
	for sc.Scan() {
		if l := sc.Text(); l == "---" || strings.HasPrefix(l, "--- ") {
			flush()
			continue
		}
		cur.Write(sc.Bytes())
		cur.WriteByte('\n')
	}
	flush()
	return docs
}
