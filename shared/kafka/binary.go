package kafka

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"
	"github.com/twmb/franz-go/pkg/kgo"
)

// CloudEvents Kafka protocol binding, binary content mode: attributes travel
// as `ce_`-prefixed headers, datacontenttype as `content-type`, the data as
// the record value. sdk-go's franz binding does not resolve here, so this is
// the small adapter the spec describes.
const (
	headerPrefix      = "ce_"
	headerContentType = "content-type"
	// ExtPartitionKey is the spec's partitioning extension; when set it is
	// the record key.
	ExtPartitionKey = "partitionkey"
)

// ErrNotCloudEvent reports a record that is not a valid binary-mode
// CloudEvent; callers dead-letter such records rather than retry them.
var ErrNotCloudEvent = errors.New("kafka: record is not a binary-mode CloudEvent")

// Record encodes ev for topic in binary content mode. The key is the
// partitionkey extension when present, else key.
func Record(topic, key string, ev event.Event) (*kgo.Record, error) {
	if err := ev.Validate(); err != nil {
		return nil, fmt.Errorf("kafka: encode %s: %w", ev.ID(), err)
	}
	if pk, ok := ev.Extensions()[ExtPartitionKey]; ok {
		s, err := types.Format(pk)
		if err != nil {
			return nil, fmt.Errorf("kafka: encode %s: %s: %w", ev.ID(), ExtPartitionKey, err)
		}
		key = s
	}
	hs := []kgo.RecordHeader{
		{Key: "ce_specversion", Value: []byte(ev.SpecVersion())},
		{Key: "ce_id", Value: []byte(ev.ID())},
		{Key: "ce_source", Value: []byte(ev.Source())},
		{Key: "ce_type", Value: []byte(ev.Type())},
	}
	if ct := ev.DataContentType(); ct != "" {
		hs = append(hs, kgo.RecordHeader{Key: headerContentType, Value: []byte(ct)})
	}
	if s := ev.Subject(); s != "" {
		hs = append(hs, kgo.RecordHeader{Key: "ce_subject", Value: []byte(s)})
	}
	if s := ev.DataSchema(); s != "" {
		hs = append(hs, kgo.RecordHeader{Key: "ce_dataschema", Value: []byte(s)})
	}
	if t := ev.Time(); !t.IsZero() {
		hs = append(hs, kgo.RecordHeader{Key: "ce_time", Value: []byte(t.UTC().Format(time.RFC3339Nano))})
	}
	for name, v := range ev.Extensions() {
		s, err := types.Format(v)
		if err != nil {
			return nil, fmt.Errorf("kafka: encode %s: extension %s: %w", ev.ID(), name, err)
		}
		hs = append(hs, kgo.RecordHeader{Key: headerPrefix + name, Value: []byte(s)})
	}
	r := &kgo.Record{Topic: topic, Value: ev.Data(), Headers: hs}
	if key != "" {
		r.Key = []byte(key)
	}
	return r, nil
}

// Event decodes a binary-mode record. A record missing required attributes
// or carrying malformed ones yields an error wrapping ErrNotCloudEvent.
func Event(r *kgo.Record) (event.Event, error) {
	ev := event.New()
	var sawSpec bool
	for _, h := range r.Headers {
		name := strings.ToLower(h.Key)
		v := string(h.Value)
		if name == headerContentType {
			ev.SetDataContentType(v)
			continue
		}
		if !strings.HasPrefix(name, headerPrefix) {
			continue
		}
		attr := strings.TrimPrefix(name, headerPrefix)
		switch attr {
		case "specversion":
			if v != event.CloudEventsVersionV1 {
				return event.Event{}, fmt.Errorf("%w: specversion %q", ErrNotCloudEvent, v)
			}
			sawSpec = true
		case "id":
			ev.SetID(v)
		case "source":
			ev.SetSource(v)
		case "type":
			ev.SetType(v)
		case "subject":
			ev.SetSubject(v)
		case "dataschema":
			ev.SetDataSchema(v)
		case "time":
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return event.Event{}, fmt.Errorf("%w: time %q", ErrNotCloudEvent, v)
			}
			ev.SetTime(t)
		default:
			// SetExtension rejects names the spec does not allow.
			if err := ev.Context.SetExtension(attr, v); err != nil {
				return event.Event{}, fmt.Errorf("%w: extension %q: %v", ErrNotCloudEvent, attr, err)
			}
		}
	}
	if !sawSpec {
		return event.Event{}, fmt.Errorf("%w: no ce_specversion header", ErrNotCloudEvent)
	}
	if len(r.Value) > 0 {
		ev.DataEncoded = append([]byte(nil), r.Value...)
	}
	if err := ev.Validate(); err != nil {
		return event.Event{}, fmt.Errorf("%w: %v", ErrNotCloudEvent, err)
	}
	return ev, nil
}
