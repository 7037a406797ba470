package standin

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
	"sigs.k8s.io/yaml"
)

// The stand-in decodes only the fields it acts on, into small local structs
// (no Knative modules here). Unknown fields are ignored: the strict check
// with Knative's own types lives in deploy/validate.

// Meta is the part of an object's metadata the stand-in uses.
type Meta struct {
	Name        string            `json:"name"`
	Namespace   string            `json:"namespace,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// Ref is a Knative KReference.
type Ref struct {
	APIVersion string `json:"apiVersion,omitempty"`
	Kind       string `json:"kind"`
	Name       string `json:"name"`
	Namespace  string `json:"namespace,omitempty"`
}

// Destination is a Knative duckv1.Destination: a ref, a URI, or a ref plus a
// URI relative to it.
type Destination struct {
	Ref *Ref   `json:"ref,omitempty"`
	URI string `json:"uri,omitempty"`
}

func (d Destination) String() string {
	switch {
	case d.Ref != nil && d.URI != "":
		return d.Ref.Kind + "/" + d.Ref.Name + d.URI
	case d.Ref != nil:
		return d.Ref.Kind + "/" + d.Ref.Name
	default:
		return d.URI
	}
}

// Delivery is a Knative DeliverySpec.
type Delivery struct {
	DeadLetterSink *Destination `json:"deadLetterSink,omitempty"`
	Retry          *int32       `json:"retry,omitempty"`
	BackoffPolicy  *string      `json:"backoffPolicy,omitempty"`
	BackoffDelay   *string      `json:"backoffDelay,omitempty"`
	Timeout        *string      `json:"timeout,omitempty"`
	RetryAfterMax  *string      `json:"retryAfterMax,omitempty"`
}

// Broker is an eventing.knative.dev/v1 Broker.
type Broker struct {
	Meta Meta `json:"metadata"`
	Spec struct {
		Delivery *Delivery `json:"delivery,omitempty"`
	} `json:"spec"`
	File string `json:"-"`
}

// Trigger is an eventing.knative.dev/v1 Trigger.
type Trigger struct {
	Meta Meta `json:"metadata"`
	Spec struct {
		Broker string `json:"broker"`
		Filter *struct {
			Attributes map[string]string `json:"attributes,omitempty"`
		} `json:"filter,omitempty"`
		// Filters (the CESQL-based dialects) are not implemented; Load
		// rejects a Trigger that uses them rather than route wrongly.
		Filters    []json.RawMessage `json:"filters,omitempty"`
		Subscriber Destination       `json:"subscriber"`
		Delivery   *Delivery         `json:"delivery,omitempty"`
	} `json:"spec"`
	File string `json:"-"`
}

// Filter returns the Trigger's attribute filter (nil: everything passes).
func (t *Trigger) Filter() map[string]string {
	if t.Spec.Filter == nil {
		return nil
	}
	return t.Spec.Filter.Attributes
}

// KafkaSource is a sources.knative.dev/v1 KafkaSource.
type KafkaSource struct {
	Meta Meta `json:"metadata"`
	Spec struct {
		BootstrapServers []string    `json:"bootstrapServers"`
		Topics           []string    `json:"topics"`
		ConsumerGroup    string      `json:"consumerGroup,omitempty"`
		InitialOffset    string      `json:"initialOffset,omitempty"`
		Sink             Destination `json:"sink"`
		Delivery         *Delivery   `json:"delivery,omitempty"`
	} `json:"spec"`
	File string `json:"-"`
}

// KafkaSink is an eventing.knative.dev/v1alpha1 KafkaSink.
type KafkaSink struct {
	Meta Meta `json:"metadata"`
	Spec struct {
		Topic       string `json:"topic"`
		ContentMode string `json:"contentMode,omitempty"`
	} `json:"spec"`
	File string `json:"-"`
}

// PingSource is a sources.knative.dev/v1 PingSource.
type PingSource struct {
	Meta Meta `json:"metadata"`
	Spec struct {
		Schedule    string      `json:"schedule"`
		Timezone    string      `json:"timezone,omitempty"`
		ContentType string      `json:"contentType,omitempty"`
		Data        string      `json:"data,omitempty"`
		DataBase64  string      `json:"dataBase64,omitempty"`
		Sink        Destination `json:"sink"`
	} `json:"spec"`
	File string `json:"-"`
}

// Manifests is every object the stand-in understood in a directory.
type Manifests struct {
	Dir          string
	Brokers      []*Broker
	Triggers     []*Trigger
	KafkaSources []*KafkaSource
	KafkaSinks   []*KafkaSink
	PingSources  []*PingSource
}

// DefaultNamespace is used for objects without metadata.namespace.
const DefaultNamespace = "default"

// Load reads every *.yaml and *.yml file in dir (not recursively), each
// possibly holding several "---"-separated documents. Kinds the stand-in does
// not act on (Services, ConfigMaps, …) are skipped. A file that does not
// parse, or an object the stand-in could not act on (no name, a Trigger
// without broker or subscriber or with a bad delivery-order annotation, a bad
// backoffDelay or cron schedule, a name defined twice), is an error naming
// the file.
func Load(dir string) (*Manifests, error) {
	files, err := manifestFiles(dir)
	if err != nil {
		return nil, err
	}
	m := &Manifests{Dir: dir}
	seen := map[string]string{} // kind/ns/name -> file
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("standin: %w", err)
		}
		docs, err := splitYAML(b)
		if err != nil {
			return nil, fmt.Errorf("standin: %s: %w", f, err)
		}
		for i, doc := range docs {
			if err := m.add(f, doc, seen); err != nil {
				if len(docs) > 1 {
					return nil, fmt.Errorf("standin: %s (document %d): %w", f, i+1, err)
				}
				return nil, fmt.Errorf("standin: %s: %w", f, err)
			}
		}
	}
	return m, nil
}

func manifestFiles(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("standin: read manifests: %w", err)
	}
	var files []string
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() || strings.HasPrefix(n, ".") {
			continue
		}
		if strings.HasSuffix(n, ".yaml") || strings.HasSuffix(n, ".yml") {
			files = append(files, filepath.Join(dir, n))
		}
	}
	slices.Sort(files)
	return files, nil
}

// splitYAML splits a multi-document YAML stream on "---" lines.
func splitYAML(b []byte) ([][]byte, error) {
	var docs [][]byte
	var cur bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 64*1024), 16*1024*1024)
	flush := func() {
		if strings.TrimSpace(cur.String()) != "" {
			docs = append(docs, bytes.Clone(cur.Bytes()))
		}
		cur.Reset()
	}
	for sc.Scan() {
		line := sc.Text()
		if line == "---" || strings.HasPrefix(line, "--- ") || strings.HasPrefix(line, "---\t") {
			flush()
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	flush()
	return docs, nil
}

func group(apiVersion string) string {
	g, _, ok := strings.Cut(apiVersion, "/")
	if !ok {
		return "" // core group ("v1")
	}
	return g
}

func (m *Manifests) add(file string, doc []byte, seen map[string]string) error {
	var tm struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   Meta   `json:"metadata"`
	}
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return fmt.Errorf("decode: %w", err)
	}
	if tm.APIVersion == "" && tm.Kind == "" {
		// Comment-only or empty document.
		if isBlankYAML(doc) {
			return nil
		}
		return errors.New("document has no apiVersion and kind")
	}
	var target any
	var meta *Meta
	var after func() error
	switch gk := group(tm.APIVersion) + "/" + tm.Kind; gk {
	case "eventing.knative.dev/Broker":
		o := &Broker{File: file}
		target, meta = o, &o.Meta
		after = func() error {
			m.Brokers = append(m.Brokers, o)
			return checkDelivery("spec.delivery", o.Spec.Delivery)
		}
	case "eventing.knative.dev/Trigger":
		o := &Trigger{File: file}
		target, meta = o, &o.Meta
		after = func() error {
			if o.Spec.Broker == "" {
				return errors.New("trigger: spec.broker is required")
			}
			if len(o.Spec.Filters) > 0 {
				return errors.New("trigger: spec.filters (new filters) is not supported by the local stand-in; use spec.filter.attributes")
			}
			if err := checkDestination("spec.subscriber", &o.Spec.Subscriber); err != nil {
				return err
			}
			if _, err := parseDeliveryOrder(o.Meta.Annotations); err != nil {
				return fmt.Errorf("trigger: %w", err)
			}
			m.Triggers = append(m.Triggers, o)
			return checkDelivery("spec.delivery", o.Spec.Delivery)
		}
	case "sources.knative.dev/KafkaSource":
		o := &KafkaSource{File: file}
		target, meta = o, &o.Meta
		after = func() error {
			if len(o.Spec.Topics) == 0 {
				return errors.New("kafkasource: spec.topics is required")
			}
			if err := checkDestination("spec.sink", &o.Spec.Sink); err != nil {
				return err
			}
			switch o.Spec.InitialOffset {
			case "", "earliest", "latest":
			default:
				return fmt.Errorf("kafkasource: spec.initialOffset %q is not earliest or latest", o.Spec.InitialOffset)
			}
			m.KafkaSources = append(m.KafkaSources, o)
			return checkDelivery("spec.delivery", o.Spec.Delivery)
		}
	case "eventing.knative.dev/KafkaSink":
		o := &KafkaSink{File: file}
		target, meta = o, &o.Meta
		after = func() error {
			if o.Spec.Topic == "" {
				return errors.New("kafkasink: spec.topic is required")
			}
			switch o.Spec.ContentMode {
			case "", "binary", "structured":
			default:
				return fmt.Errorf("kafkasink: spec.contentMode %q is not binary or structured", o.Spec.ContentMode)
			}
			m.KafkaSinks = append(m.KafkaSinks, o)
			return nil
		}
	case "sources.knative.dev/PingSource":
		o := &PingSource{File: file}
		target, meta = o, &o.Meta
		after = func() error {
			if _, err := pingSchedule(o); err != nil {
				return err
			}
			if err := checkDestination("spec.sink", &o.Spec.Sink); err != nil {
				return err
			}
			m.PingSources = append(m.PingSources, o)
			return nil
		}
	default:
		return nil // not something the stand-in acts on
	}
	if err := yaml.Unmarshal(doc, target); err != nil {
		return fmt.Errorf("decode %s: %w", tm.Kind, err)
	}
	if meta.Name == "" {
		return fmt.Errorf("%s: metadata.name is required", tm.Kind)
	}
	if meta.Namespace == "" {
		meta.Namespace = DefaultNamespace
	}
	key := tm.Kind + "/" + meta.Namespace + "/" + meta.Name
	if prev, ok := seen[key]; ok {
		return fmt.Errorf("%s %s/%s is also defined in %s", tm.Kind, meta.Namespace, meta.Name, prev)
	}
	seen[key] = file
	if err := after(); err != nil {
		return fmt.Errorf("%s %s: %w", tm.Kind, meta.Name, err)
	}
	return nil
}

func isBlankYAML(doc []byte) bool {
	for _, l := range strings.Split(string(doc), "\n") {
		l = strings.TrimSpace(l)
		if l != "" && !strings.HasPrefix(l, "#") {
			return false
		}
	}
	return true
}

func checkDestination(field string, d *Destination) error {
	if d.Ref == nil && d.URI == "" {
		return fmt.Errorf("%s: ref or uri is required", field)
	}
	if d.Ref != nil && (d.Ref.Kind == "" || d.Ref.Name == "") {
		return fmt.Errorf("%s.ref: kind and name are required", field)
	}
	return nil
}

func checkDelivery(field string, d *Delivery) error {
	if d == nil {
		return nil
	}
	if d.BackoffDelay != nil {
		if _, err := ParseISO8601Duration(*d.BackoffDelay); err != nil {
			return fmt.Errorf("%s.backoffDelay: %w", field, err)
		}
	}
	if d.Timeout != nil {
		if _, err := ParseISO8601Duration(*d.Timeout); err != nil {
			return fmt.Errorf("%s.timeout: %w", field, err)
		}
	}
	if d.RetryAfterMax != nil {
		if _, err := ParseISO8601Duration(*d.RetryAfterMax); err != nil {
			return fmt.Errorf("%s.retryAfterMax: %w", field, err)
		}
	}
	if d.BackoffPolicy != nil && *d.BackoffPolicy != "linear" && *d.BackoffPolicy != "exponential" {
		return fmt.Errorf("%s.backoffPolicy: %q is not linear or exponential", field, *d.BackoffPolicy)
	}
	if d.Retry != nil && *d.Retry < 0 {
		return fmt.Errorf("%s.retry: must not be negative", field)
	}
	if d.DeadLetterSink != nil {
		return checkDestination(field+".deadLetterSink", d.DeadLetterSink)
	}
	return nil
}

// pingParser accepts what Knative's PingSource webhook accepts: 5 fields,
// an optional leading seconds field, and descriptors such as @hourly.
var pingParser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// pingSchedule parses a PingSource's cron schedule in its timezone.
func pingSchedule(p *PingSource) (cron.Schedule, error) {
	if p.Spec.Schedule == "" {
		return nil, errors.New("pingsource: spec.schedule is required")
	}
	if strings.Contains(p.Spec.Schedule, "@every") {
		return nil, errors.New("pingsource: spec.schedule: unsupported descriptor @every (Knative rejects it)")
	}
	spec := p.Spec.Schedule
	if p.Spec.Timezone != "" {
		if _, err := time.LoadLocation(p.Spec.Timezone); err != nil {
			return nil, fmt.Errorf("pingsource: spec.timezone: %w", err)
		}
		spec = "CRON_TZ=" + p.Spec.Timezone + " " + spec
	}
	s, err := pingParser.Parse(spec)
	if err != nil {
		return nil, fmt.Errorf("pingsource: spec.schedule %q: %w", p.Spec.Schedule, err)
	}
	return s, nil
}

// Broker returns the Broker ns/name, or nil.
func (m *Manifests) Broker(ns, name string) *Broker {
	for _, b := range m.Brokers {
		if b.Meta.Namespace == ns && b.Meta.Name == name {
			return b
		}
	}
	return nil
}

// KafkaSink returns the KafkaSink ns/name, or nil.
func (m *Manifests) KafkaSink(ns, name string) *KafkaSink {
	for _, k := range m.KafkaSinks {
		if k.Meta.Namespace == ns && k.Meta.Name == name {
			return k
		}
	}
	return nil
}

// TriggersFor returns the Triggers on Broker ns/name, in name order.
func (m *Manifests) TriggersFor(ns, broker string) []*Trigger {
	var out []*Trigger
	for _, t := range m.Triggers {
		if t.Meta.Namespace == ns && t.Spec.Broker == broker {
			out = append(out, t)
		}
	}
	slices.SortFunc(out, func(a, b *Trigger) int { return strings.Compare(a.Meta.Name, b.Meta.Name) })
	return out
}

// PingSource returns the PingSource called name (in any namespace), or an
// error if there is none or the name is ambiguous.
func (m *Manifests) PingSource(name string) (*PingSource, error) {
	var found *PingSource
	for _, p := range m.PingSources {
		if p.Meta.Name == name {
			if found != nil {
				return nil, fmt.Errorf("standin: PingSource %q is defined in namespaces %s and %s", name, found.Meta.Namespace, p.Meta.Namespace)
			}
			found = p
		}
	}
	if found == nil {
		return nil, fmt.Errorf("standin: no PingSource %q", name)
	}
	return found, nil
}

// brokerRef reports whether d points at a Broker and returns its ns/name.
func brokerRef(d Destination, ns string) (string, string, bool) {
	if d.Ref == nil || d.Ref.Kind != "Broker" || group(d.Ref.APIVersion) != "eventing.knative.dev" && d.Ref.APIVersion != "" {
		return "", "", false
	}
	if d.Ref.Namespace != "" {
		ns = d.Ref.Namespace
	}
	return ns, d.Ref.Name, true
}
