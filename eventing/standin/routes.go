package standin

import (
	"fmt"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"
)

// Defaults where neither the Trigger nor its Broker say otherwise.
const (
	// defaultBackoffDelay mirrors the Kafka controller's
	// DEFAULT_BACKOFF_DELAY_MS, used when retry is set without a delay.
	defaultBackoffDelay = time.Second
	// defaultTimeout bounds one delivery attempt when delivery.timeout is
	// not set.
	defaultTimeout = time.Minute
)

// delivery is an effective, parsed DeliverySpec.
type delivery struct {
	retry         int
	linear        bool
	delay         time.Duration
	timeout       time.Duration
	retryAfterMax time.Duration // 0: no cap
	deadLetter    *Destination
	deadLetterNS  string
}

// backoff returns the wait before retry n (n = 1 for the first retry):
// delay*n for linear, delay*2^n for exponential, as Knative documents
// ("backoffDelay*2^<numberOfRetries>").
func (d delivery) backoff(n int) time.Duration {
	if d.linear {
		return d.delay * time.Duration(n)
	}
	if n > 30 {
		n = 30
	}
	return d.delay * time.Duration(1<<n)
}

// mergeDelivery resolves a Trigger's delivery against its Broker's, field by
// field, as the Kafka Broker's control plane does (MergeEgressConfig): each
// field of the Trigger's spec wins, the Broker's fills what it left out.
func mergeDelivery(trigger *Delivery, triggerNS string, broker *Delivery, brokerNS string) delivery {
	d := delivery{delay: defaultBackoffDelay, timeout: defaultTimeout}
	pick := func(f func(*Delivery) bool) (*Delivery, string) {
		if trigger != nil && f(trigger) {
			return trigger, triggerNS
		}
		if broker != nil && f(broker) {
			return broker, brokerNS
		}
		return nil, ""
	}
	if s, ns := pick(func(x *Delivery) bool { return x.DeadLetterSink != nil }); s != nil {
		d.deadLetter, d.deadLetterNS = s.DeadLetterSink, ns
	}
	if s, _ := pick(func(x *Delivery) bool { return x.Retry != nil }); s != nil {
		d.retry = int(*s.Retry)
	}
	if s, _ := pick(func(x *Delivery) bool { return x.BackoffPolicy != nil }); s != nil {
		d.linear = *s.BackoffPolicy == "linear"
	}
	// Durations were validated by Load.
	if s, _ := pick(func(x *Delivery) bool { return x.BackoffDelay != nil }); s != nil {
		d.delay, _ = ParseISO8601Duration(*s.BackoffDelay)
	}
	if s, _ := pick(func(x *Delivery) bool { return x.Timeout != nil }); s != nil {
		if t, _ := ParseISO8601Duration(*s.Timeout); t > 0 {
			d.timeout = t
		}
	}
	if s, _ := pick(func(x *Delivery) bool { return x.RetryAfterMax != nil }); s != nil {
		d.retryAfterMax, _ = ParseISO8601Duration(*s.RetryAfterMax)
	}
	return d
}

// route is one subscription the stand-in delivers to: a Trigger on a Broker,
// or a source whose sink is not a Broker (then it has no filter).
type route struct {
	name       string // Trigger name, or the source's name for a direct sink
	ns         string
	filter     map[string]string
	subscriber Destination
	delivery   delivery
	order      DeliveryOrder
}

// Route describes one resolved subscription, for tests and tooling.
type Route struct {
	// Name is the Trigger's name (or the source's, for a source whose sink
	// is not a Broker).
	Name       string
	Namespace  string
	Filter     map[string]string
	Subscriber Destination
	// ConsumerGroup is the Kafka consumer group (empty for PingSources).
	ConsumerGroup string
	// Topics are the topics consumed (empty for PingSources).
	Topics []string
	// DeliveryOrder is how the consumer group delivers a partition's
	// records (empty for PingSources, whose events are not consumed).
	DeliveryOrder DeliveryOrder
	// Source is "KafkaSource/<name>" or "PingSource/<name>".
	Source string
}

// kafkaRoute is a route fed by a KafkaSource.
type kafkaRoute struct {
	route
	source *KafkaSource
	group  string
}

// routesFor returns the routes an event from a source with sink d (in
// namespace ns) goes through: every Trigger of the Broker if d is a Broker,
// else d itself with the source's own delivery.
func (m *Manifests) routesFor(d Destination, ns, sourceName string, own *Delivery) ([]route, []string) {
	bns, bname, ok := brokerRef(d, ns)
	if !ok {
		// A KafkaSource's own spec.ordering is not read: ordered, its
		// default in Knative too.
		return []route{{
			name:       sourceName,
			ns:         ns,
			subscriber: d,
			delivery:   mergeDelivery(own, ns, nil, ""),
			order:      Ordered,
		}}, nil
	}
	b := m.Broker(bns, bname)
	if b == nil {
		return nil, []string{fmt.Sprintf("sink Broker %s/%s is not defined", bns, bname)}
	}
	var out []route
	for _, t := range m.TriggersFor(bns, bname) {
		out = append(out, route{
			name:       t.Meta.Name,
			ns:         t.Meta.Namespace,
			filter:     t.Filter(),
			subscriber: t.Spec.Subscriber,
			delivery:   mergeDelivery(t.Spec.Delivery, t.Meta.Namespace, b.Spec.Delivery, b.Meta.Namespace),
			order:      t.DeliveryOrder(),
		})
	}
	return out, nil
}

func (m *Manifests) kafkaRoutes() ([]kafkaRoute, []string) {
	var out []kafkaRoute
	var warns []string
	for _, src := range m.KafkaSources {
		rs, w := m.routesFor(src.Spec.Sink, src.Meta.Namespace, src.Meta.Name, src.Spec.Delivery)
		for _, s := range w {
			warns = append(warns, fmt.Sprintf("KafkaSource %s (%s): %s", src.Meta.Name, src.File, s))
		}
		base := src.Spec.ConsumerGroup
		if base == "" {
			base = "knative-kafka-source-" + src.Meta.Namespace + "-" + src.Meta.Name
		}
		_, _, toBroker := brokerRef(src.Spec.Sink, src.Meta.Namespace)
		for _, r := range rs {
			g := base
			if toBroker {
				g = base + "." + r.name
			}
			out = append(out, kafkaRoute{route: r, source: src, group: g})
		}
	}
	return out, warns
}

type pingRoutes struct {
	source *PingSource
	routes []route
}

func (m *Manifests) pingRoutes() ([]pingRoutes, []string) {
	var out []pingRoutes
	var warns []string
	for _, p := range m.PingSources {
		rs, w := m.routesFor(p.Spec.Sink, p.Meta.Namespace, p.Meta.Name, nil)
		for _, s := range w {
			warns = append(warns, fmt.Sprintf("PingSource %s (%s): %s", p.Meta.Name, p.File, s))
		}
		out = append(out, pingRoutes{source: p, routes: rs})
	}
	return out, warns
}

// Routes lists every subscription the stand-in would run for these
// manifests, and warnings about objects that lead nowhere (a source whose
// Broker is not defined, a Trigger on an unknown Broker).
func (m *Manifests) Routes() ([]Route, []string) {
	krs, warns := m.kafkaRoutes()
	prs, w := m.pingRoutes()
	warns = append(warns, w...)
	var out []Route
	for _, r := range krs {
		out = append(out, Route{
			Name: r.name, Namespace: r.ns, Filter: r.filter, Subscriber: r.subscriber,
			ConsumerGroup: r.group, Topics: r.source.Spec.Topics, Source: "KafkaSource/" + r.source.Meta.Name,
			DeliveryOrder: r.order,
		})
	}
	for _, p := range prs {
		for _, r := range p.routes {
			out = append(out, Route{
				Name: r.name, Namespace: r.ns, Filter: r.filter, Subscriber: r.subscriber,
				Source: "PingSource/" + p.source.Meta.Name,
			})
		}
	}
	for _, t := range m.Triggers {
		if m.Broker(t.Meta.Namespace, t.Spec.Broker) == nil {
			warns = append(warns, fmt.Sprintf("Trigger %s (%s): Broker %s/%s is not defined", t.Meta.Name, t.File, t.Meta.Namespace, t.Spec.Broker))
		}
	}
	return out, warns
}

// Matches reports whether ev passes an attribute filter with Knative's
// exact-match semantics: every filter attribute must be present on the event
// (as a context attribute or an extension) with exactly that value; an empty
// filter value matches any non-empty value; an empty filter matches all.
func Matches(filter map[string]string, ev event.Event) bool {
	for k, want := range filter {
		got, ok := attribute(ev, strings.ToLower(k))
		if !ok || want == "" && got == "" {
			return false
		}
		if want != "" && want != got {
			return false
		}
	}
	return true
}

func attribute(ev event.Event, name string) (string, bool) {
	switch name {
	case "specversion":
		return ev.SpecVersion(), true
	case "type":
		return ev.Type(), true
	case "source":
		return ev.Source(), true
	case "subject":
		return ev.Subject(), true
	case "id":
		return ev.ID(), true
	case "time":
		if ev.Time().IsZero() {
			return "", true
		}
		b, err := ev.Time().MarshalText()
		if err != nil {
			return "", false
		}
		return string(b), true
	case "dataschema", "schemaurl":
		return ev.DataSchema(), true
	case "datacontenttype":
		return ev.DataContentType(), true
	case "datamediatype":
		return ev.DataMediaType(), true
	}
	v, ok := ev.Extensions()[name]
	if !ok {
		return "", false
	}
	s, err := types.Format(v)
	if err != nil {
		return "", false
	}
	return s, true
}
