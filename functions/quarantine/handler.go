package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"github.com/coffeebuddy/coffeebuddy/shared/events"
	"strconv"
	"strings"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"
	"github.com/coffeebuddy/coffeebuddy/shared/function"
	"github.com/coffeebuddy/coffeebuddy/shared/kafka"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The dead-letter record's contract, read by eventing/cmd/deadletters and
// described in docs/runbooks/dead-letters.md. The knativeerror* extensions
// are the ones Knative's dead-letter sink adds, so every dead letter reads
// the same way; the coffeebuddy* ones say where the record came from.
const (
	// ReasonNotCloudEvent is the coffeebuddyreason of a quarantined record.
	ReasonNotCloudEvent = "not a CloudEvent"
	// CodeUnprocessable is the knativeerrorcode of a quarantined record:
	// it was received fine but cannot be understood.
	CodeUnprocessable = 422
)

// Producer is the part of *kgo.Client the handler uses.
type Producer interface {
	ProduceSync(ctx context.Context, rs ...*kgo.Record) kgo.ProduceResults
}

// Handler parks undecodable records on the dead-letter topic.
type Handler struct {
	kafka       Producer
	topic       string
	quarantined *prometheus.CounterVec
}

// New returns the handler, producing to topic (coffee.deadletter) and
// counting quarantined records in reg (when non-nil).
func New(p Producer, topic string, reg prometheus.Registerer) *Handler {
	h := &Handler{
		kafka: p,
		topic: topic,
		quarantined: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name:        "coffeebuddy_records_quarantined_total",
			Help:        "Kafka records that were not CloudEvents, moved to the dead-letter topic, by original topic.",
			ConstLabels: prometheus.Labels{"function": "quarantine"},
		}, []string{"topic"}),
	}
	if reg != nil {
		reg.MustRegister(h.quarantined)
	}
	return h
}

// Handle produces e, unchanged but for its id and the extensions saying why
// and whence, to the dead-letter topic, and only then acknowledges it (a
// failed produce is retried by the broker, so nothing is lost).
//
// Redelivery of e produces a second record with the same CloudEvent id
// (DeadLetterID): readers of the dead-letter topic dedupe by id.
func (h *Handler) Handle(ctx context.Context, e event.Event) (*event.Event, error) {
	if e.Type() != events.TypeKafkaRecord {
		return nil, function.Permanentf("quarantine takes %s, got %s", events.TypeKafkaRecord, e.Type())
	}
	o := originOf(e)
	detail := ReasonNotCloudEvent + " (" + o.String() + "): " + whyNotCloudEvent(e)

	dl := e.Clone()
	dl.SetID(DeadLetterID(e))
	dl.SetExtension(events.ExtErrorCode, CodeUnprocessable)
	dl.SetExtension(events.ExtErrorData, base64.StdEncoding.EncodeToString([]byte(detail)))
	dl.SetExtension(events.ExtReason, ReasonNotCloudEvent)
	dl.SetExtension(events.ExtOrigID, e.ID())
	if o.topic != "" {
		dl.SetExtension(events.ExtTopic, o.topic)
	}
	if o.hasPos {
		dl.SetExtension(events.ExtPartition, strconv.Itoa(int(o.partition)))
		dl.SetExtension(events.ExtOffset, strconv.FormatInt(o.offset, 10))
	}
	rec, err := kafka.Record(h.topic, extString(e, events.ExtKey), dl)
	if err != nil {
		// Clone of a valid event plus valid extensions: cannot happen
		// short of a bug; retrying will not help.
		return nil, function.Permanentf("encode dead letter: %w", err)
	}
	log := function.Logger(ctx).With("topic", o.topic, "partition", o.partition, "offset", o.offset,
		"dead_letter_id", dl.ID())
	if err := h.kafka.ProduceSync(ctx, rec).FirstErr(); err != nil {
		return nil, fmt.Errorf("produce dead letter %s to %s: %w", dl.ID(), h.topic, err)
	}
	h.quarantined.WithLabelValues(o.topic).Inc()
	log.Warn("record quarantined: not a CloudEvent", "reason", detail,
		"dead_letter_topic", rec.Topic, "dead_letter_partition", rec.Partition, "dead_letter_offset", rec.Offset)
	return nil, nil
}

// DeadLetterID is the quarantined record's CloudEvent id: derived from the
// KafkaSource's event id (partition:<p>/offset:<o>) and the original topic,
// so a redelivery of the same record gets the same id and records of two
// topics never share one.
func DeadLetterID(e event.Event) string {
	where := originOf(e).topic
	if where == "" {
		where = e.Source()
	}
	return "quarantine:" + where + "/" + e.ID()
}

// origin is where the KafkaSource read the record: source
// /apis/v1/namespaces/<ns>/kafkasources/<name>#<topic>, subject
// partition:<p>#<offset>.
type origin struct {
	topic     string
	partition int32
	offset    int64
	hasPos    bool
}

func originOf(e event.Event) origin {
	var o origin
	if i := strings.LastIndexByte(e.Source(), '#'); i >= 0 {
		o.topic = e.Source()[i+1:]
	}
	if rest, ok := strings.CutPrefix(e.Subject(), "partition:"); ok {
		p, off, ok := strings.Cut(rest, "#")
		pn, err1 := strconv.ParseInt(p, 10, 32)
		on, err2 := strconv.ParseInt(off, 10, 64)
		if ok && err1 == nil && err2 == nil {
			o.partition, o.offset, o.hasPos = int32(pn), on, true
		}
	}
	return o
}

func (o origin) String() string {
	topic := o.topic
	if topic == "" {
		topic = "unknown topic"
	}
	if !o.hasPos {
		return topic
	}
	return fmt.Sprintf("%s partition %d offset %d", topic, o.partition, o.offset)
}

// whyNotCloudEvent rebuilds the record's headers from the KafkaSource's
// kafkaheader* extensions and asks the binary-mode decoder what is wrong.
// The KafkaSource lower-cases header names and drops everything but letters
// and digits, so ce_id comes back as ceid: a leading "ce" is mapped back to
// "ce_" and "contenttype" to "content-type".
func whyNotCloudEvent(e event.Event) string {
	var hs []kgo.RecordHeader
	for name, v := range e.Extensions() {
		h, ok := strings.CutPrefix(name, events.ExtHeaderPrefix)
		if !ok {
			continue
		}
		s, err := types.Format(v)
		if err != nil {
			continue
		}
		switch {
		case h == "contenttype":
			h = "content-type"
		case strings.HasPrefix(h, "ce"):
			h = "ce_" + h[2:]
		}
		hs = append(hs, kgo.RecordHeader{Key: h, Value: []byte(s)})
	}
	_, err := kafka.Event(&kgo.Record{Headers: hs, Value: e.Data()})
	if err == nil {
		return "its headers do not form a binary-mode CloudEvent"
	}
	return strings.TrimPrefix(err.Error(), kafka.ErrNotCloudEvent.Error()+": ")
}

func extString(e event.Event, name string) string {
	v, ok := e.Extensions()[name]
	if !ok {
		return ""
	}
	s, err := types.Format(v)
	if err != nil {
		return ""
	}
	return s
}
