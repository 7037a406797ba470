package kafka_test

import (
	"errors"
	"maps"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/coffeebuddy/coffeebuddy/shared/kafka"
	"github.com/twmb/franz-go/pkg/kgo"
)

// fullEvent has every optional attribute set, extensions (one of them the
// partition key) and a time with nanoseconds in a non-UTC zone.
func fullEvent(t testing.TB) event.Event {
	t.Helper()
	ev := event.New()
	ev.SetID("evt-0001")
	ev.SetSource("/coffeebuddy/test")
	ev.SetType("com.coffeebuddy.test.happened")
	ev.SetSubject("run/42")
	ev.SetDataSchema("https://coffeebuddy.example/schemas/test.json")
	ev.SetTime(time.Date(2026, 3, 14, 9, 26, 53, 123456789, time.FixedZone("CET", 3600)))
	ev.SetExtension(kafka.ExtPartitionKey, "run-42")
	ev.SetExtension("runid", "42")
	ev.SetExtension("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	if err := ev.SetData(event.ApplicationJSON, map[string]any{"drink": "flat white", "sugar": 0}); err != nil {
		t.Fatal(err)
	}
	return ev
}

func header(r *kgo.Record, key string) (string, bool) {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value), true
		}
	}
	return "", false
}

// assertSameEvent compares every attribute, extension and the data.
func assertSameEvent(t *testing.T, got, want event.Event) {
	t.Helper()
	if got.SpecVersion() != want.SpecVersion() {
		t.Errorf("specversion = %q, want %q", got.SpecVersion(), want.SpecVersion())
	}
	for _, a := range []struct{ name, got, want string }{
		{"id", got.ID(), want.ID()},
		{"source", got.Source(), want.Source()},
		{"type", got.Type(), want.Type()},
		{"subject", got.Subject(), want.Subject()},
		{"dataschema", got.DataSchema(), want.DataSchema()},
		{"datacontenttype", got.DataContentType(), want.DataContentType()},
	} {
		if a.got != a.want {
			t.Errorf("%s = %q, want %q", a.name, a.got, a.want)
		}
	}
	if !got.Time().Equal(want.Time()) {
		t.Errorf("time = %v, want %v", got.Time(), want.Time())
	}
	if got.Time().Nanosecond() != want.Time().Nanosecond() {
		t.Errorf("time lost nanoseconds: %d, want %d", got.Time().Nanosecond(), want.Time().Nanosecond())
	}
	if !maps.Equal(got.Extensions(), want.Extensions()) {
		t.Errorf("extensions = %v, want %v", got.Extensions(), want.Extensions())
	}
	if string(got.Data()) != string(want.Data()) {
		t.Errorf("data = %s, want %s", got.Data(), want.Data())
	}
}

func TestRecordEventRoundTrip(t *testing.T) {
	want := fullEvent(t)
	r, err := kafka.Record("coffee.orders", "ignored-key", want)
	if err != nil {
		t.Fatalf("Record: %v", err)
	}
	if r.Topic != "coffee.orders" {
		t.Errorf("topic = %q", r.Topic)
	}
	if string(r.Key) != "run-42" {
		t.Errorf("key = %q, want the partitionkey extension run-42", r.Key)
	}
	for key, wantV := range map[string]string{
		"ce_specversion":  "1.0",
		"ce_id":           "evt-0001",
		"ce_source":       "/coffeebuddy/test",
		"ce_type":         "com.coffeebuddy.test.happened",
		"ce_subject":      "run/42",
		"ce_dataschema":   "https://coffeebuddy.example/schemas/test.json",
		"ce_time":         "2026-03-14T08:26:53.123456789Z",
		"ce_partitionkey": "run-42",
		"ce_runid":        "42",
		"content-type":    "application/json",
	} {
		if got, ok := header(r, key); !ok || got != wantV {
			t.Errorf("header %s = %q (present %v), want %q", key, got, ok, wantV)
		}
	}
	if _, ok := header(r, "ce_datacontenttype"); ok {
		t.Error("datacontenttype travels as ce_datacontenttype, want content-type")
	}
	if string(r.Value) != string(want.Data()) {
		t.Errorf("value = %s, want the event data %s", r.Value, want.Data())
	}

	got, err := kafka.Event(r)
	if err != nil {
		t.Fatalf("Event: %v", err)
	}
	assertSameEvent(t, got, want)
	if err := got.Validate(); err != nil {
		t.Errorf("decoded event does not validate: %v", err)
	}
}

func TestRecordKey(t *testing.T) {
	minimal := func() event.Event {
		ev := event.New()
		ev.SetID("1")
		ev.SetSource("/s")
		ev.SetType("t")
		return ev
	}
	withPK := minimal()
	withPK.SetExtension(kafka.ExtPartitionKey, "pk")
	tests := []struct {
		name    string
		key     string
		ev      event.Event
		wantKey []byte
	}{
		{"partition key wins", "k", withPK, []byte("pk")},
		{"key argument", "k", minimal(), []byte("k")},
		{"no key", "", minimal(), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := kafka.Record("topic", tt.key, tt.ev)
			if err != nil {
				t.Fatal(err)
			}
			if string(r.Key) != string(tt.wantKey) || (tt.wantKey == nil) != (r.Key == nil) {
				t.Errorf("key = %q, want %q", r.Key, tt.wantKey)
			}
			// A minimal event (no data, no time) round-trips too.
			got, err := kafka.Event(r)
			if err != nil {
				t.Fatalf("Event: %v", err)
			}
			assertSameEvent(t, got, tt.ev)
			if !got.Time().IsZero() {
				t.Errorf("time = %v, want none", got.Time())
			}
		})
	}
}

func TestRecordRejectsInvalidEvent(t *testing.T) {
	ev := event.New()
	ev.SetSource("/s")
	ev.SetType("t") // no id
	if r, err := kafka.Record("topic", "k", ev); err == nil {
		t.Fatalf("Record = %v, want a validation error", r)
	}
}

func TestEventNotCloudEvent(t *testing.T) {
	valid := func(extra ...kgo.RecordHeader) []kgo.RecordHeader {
		return append([]kgo.RecordHeader{
			{Key: "ce_specversion", Value: []byte("1.0")},
			{Key: "ce_id", Value: []byte("1")},
			{Key: "ce_source", Value: []byte("/s")},
			{Key: "ce_type", Value: []byte("t")},
		}, extra...)
	}
	without := func(key string) []kgo.RecordHeader {
		var out []kgo.RecordHeader
		for _, h := range valid() {
			if h.Key != key {
				out = append(out, h)
			}
		}
		return out
	}
	h := func(k, v string) kgo.RecordHeader { return kgo.RecordHeader{Key: k, Value: []byte(v)} }
	tests := []struct {
		name    string
		headers []kgo.RecordHeader
	}{
		{"no headers at all", nil},
		{"plain JSON record with content-type only", []kgo.RecordHeader{h("content-type", "application/json")}},
		{"no ce_specversion", without("ce_specversion")},
		{"specversion 0.3", append(without("ce_specversion"), h("ce_specversion", "0.3"))},
		{"no ce_id", without("ce_id")},
		{"no ce_source", without("ce_source")},
		{"no ce_type", without("ce_type")},
		{"bad ce_time", valid(h("ce_time", "yesterday"))},
		{"ce_time without zone", valid(h("ce_time", "2026-03-14T09:26:53"))},
		{"extension name with a dash", valid(h("ce_run-id", "42"))},
		{"extension name with an underscore", valid(h("ce_run_id", "42"))},
		{"empty extension name", valid(h("ce_", "x"))},
		{"extension overriding a spec attribute", valid(h("ce_datacontenttype", "text/plain"))},
		{"bad dataschema", valid(h("ce_dataschema", "::not a uri"))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &kgo.Record{Topic: "t", Value: []byte(`{"a":1}`), Headers: tt.headers}
			ev, err := kafka.Event(r)
			if err == nil {
				t.Fatalf("Event = %v, want an error", ev)
			}
			if !errors.Is(err, kafka.ErrNotCloudEvent) {
				t.Errorf("error %v does not wrap ErrNotCloudEvent", err)
			}
		})
	}
}

func TestEventHeaderNamesCaseInsensitive(t *testing.T) {
	r := &kgo.Record{Headers: []kgo.RecordHeader{
		{Key: "CE_SPECVERSION", Value: []byte("1.0")},
		{Key: "ce_Id", Value: []byte("1")},
		{Key: "ce_source", Value: []byte("/s")},
		{Key: "ce_type", Value: []byte("t")},
		{Key: "Content-Type", Value: []byte("text/plain")},
		{Key: "other", Value: []byte("ignored")},
	}, Value: []byte("hello")}
	ev, err := kafka.Event(r)
	if err != nil {
		t.Fatalf("Event: %v", err)
	}
	if ev.ID() != "1" || ev.DataContentType() != "text/plain" || string(ev.Data()) != "hello" {
		t.Errorf("decoded %v", ev)
	}
	if len(ev.Extensions()) != 0 {
		t.Errorf("extensions = %v, want none (non-ce_ headers are ignored)", ev.Extensions())
	}
}

func TestEventCopiesValue(t *testing.T) {
	ev := fullEvent(t)
	want := string(ev.Data())
	r, err := kafka.Record("t", "", ev)
	if err != nil {
		t.Fatal(err)
	}
	got, err := kafka.Event(r)
	if err != nil {
		t.Fatal(err)
	}
	// franz-go reuses fetch buffers; the event must not alias the record.
	for i := range r.Value {
		r.Value[i] = 'x'
	}
	if string(got.Data()) != want {
		t.Errorf("data aliases the record value: %s", got.Data())
	}
}

func TestBrokers(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{" , ", nil},
		{"a:1", []string{"a:1"}},
		{" a:1 ,b:2,, ", []string{"a:1", "b:2"}},
	}
	for _, tt := range tests {
		if got := kafka.Brokers(tt.in); !slices.Equal(got, tt.want) {
			t.Errorf("Brokers(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// extensionBug: Record writes extension values with fmt.Sprint instead of
// their CloudEvents canonical string form.
const extensionBug = "Record formats extension values with fmt.Sprint: binary prints as [1 2 3] not base64, URI values print as a Go struct (see report)"

func TestRecordExtensionValuesCanonical(t *testing.T) {
	u, err := url.Parse("https://coffeebuddy.example/runs/42")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		value any
		want  string // the spec's canonical string encoding
		fixed string // the bug this case caught, now fixed
	}{
		{"string", "flat white", "flat white", ""},
		{"boolean", true, "true", ""},
		{"integer", 42, "42", ""},
		{"timestamp", time.Date(2026, 3, 14, 9, 26, 53, 500_000_000, time.FixedZone("CET", 3600)), "2026-03-14T08:26:53.5Z", ""},
		{"binary", []byte{1, 2, 3}, "AQID", extensionBug},
		{"uri", u, "https://coffeebuddy.example/runs/42", extensionBug},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := event.New()
			ev.SetID("1")
			ev.SetSource("/s")
			ev.SetType("t")
			if err := ev.Context.SetExtension("value", tt.value); err != nil {
				t.Fatal(err)
			}
			r, err := kafka.Record("topic", "", ev)
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := header(r, "ce_value"); got != tt.want {
				t.Errorf("ce_value = %q, want %q", got, tt.want)
			}
			// As the partition key, too.
			if err := ev.Context.SetExtension(kafka.ExtPartitionKey, tt.value); err != nil {
				t.Fatal(err)
			}
			if r, err = kafka.Record("topic", "", ev); err != nil {
				t.Fatal(err)
			}
			if string(r.Key) != tt.want {
				t.Errorf("key = %q, want %q", r.Key, tt.want)
			}
		})
	}
}
