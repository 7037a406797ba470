package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/coffeebuddy/coffeebuddy/shared/events"
	"github.com/coffeebuddy/coffeebuddy/shared/function"
	"github.com/coffeebuddy/coffeebuddy/shared/kafka"
	"github.com/coffeebuddy/coffeebuddy/shared/kafka/kafkatest"
	"github.com/coffeebuddy/coffeebuddy/shared/logbuf"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kgo"
)

const wait = 30 * time.Second

// wrapped builds the event the KafkaSource makes of a record that is not a
// CloudEvent (as eventing/standin's recordEvent does): id
// partition:<p>/offset:<o>, source …#<topic>, subject partition:<p>#<o>,
// the key as `key`, headers as kafkaheader<name>, the value as data.
func wrapped(topic string, partition int32, offset int64, key string, headers map[string]string, value []byte) event.Event {
	e := event.New()
	e.SetID(fmt.Sprintf("partition:%d/offset:%d", partition, offset))
	e.SetType(events.TypeKafkaRecord)
	e.SetSource("/apis/v1/namespaces/coffeebuddy/kafkasources/coffeebuddy-topics#" + topic)
	e.SetSubject(fmt.Sprintf("partition:%d#%d", partition, offset))
	e.SetTime(time.Date(2025, 3, 4, 9, 30, 0, 0, time.UTC))
	if key != "" {
		e.SetExtension(events.ExtKey, key)
	}
	for k, v := range headers {
		e.SetExtension(events.ExtHeaderPrefix+k, v)
	}
	e.DataEncoded = value
	return e
}

type rig struct {
	cluster *kafkatest.Cluster
	cl      *kgo.Client
	reg     *prometheus.Registry
	h       *Handler
}

func newRig(t *testing.T) *rig {
	t.Helper()
	c := kafkatest.New(t)
	cl, err := kafka.NewClient(c.Brokers, function.Logger(context.Background()), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	reg := prometheus.NewRegistry()
	return &rig{cluster: c, cl: cl, reg: reg, h: New(cl, events.TopicDeadLetter, reg)}
}

func (r *rig) deadLetters(t *testing.T, n int) []*kgo.Record {
	t.Helper()
	recs := r.cluster.Consume(t, events.TopicDeadLetter, n, wait)
	if len(recs) != n {
		t.Fatalf("%d dead letters, want %d", len(recs), n)
	}
	return recs
}

func ext(e event.Event, name string) string {
	v, ok := e.Extensions()[name]
	if !ok {
		return ""
	}
	return fmt.Sprint(v)
}

func reasonOf(t *testing.T, e event.Event) string {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(ext(e, events.ExtErrorData))
	if err != nil {
		t.Fatalf("%s: %v", events.ExtErrorData, err)
	}
	return string(b)
}

func TestQuarantinesWithOriginalBytesKeyHeadersAndReason(t *testing.T) {
	r := newRig(t)
	// Not UTF-8, not JSON: the bytes must come through exactly.
	value := []byte{0xff, 0x00, 'l', 'e', 'g', 'a', 'c', 'y', 0x80}
	in := wrapped(events.TopicOrders, 2, 41, "run-7", map[string]string{"xtrace": "abc"}, value)
	if _, err := r.h.Handle(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	rec := r.deadLetters(t, 1)[0]
	if !bytes.Equal(rec.Value, value) {
		t.Errorf("value %q, want the original %q", rec.Value, value)
	}
	if string(rec.Key) != "run-7" {
		t.Errorf("record key %q, want the original run-7", rec.Key)
	}
	dl, err := kafka.Event(rec)
	if err != nil {
		t.Fatalf("dead letter is not a binary-mode CloudEvent: %v", err)
	}
	want := map[string]string{
		"id":                "quarantine:coffee.orders/partition:2/offset:41",
		"type":              events.TypeKafkaRecord,
		"source":            in.Source(),
		"subject":           in.Subject(),
		events.ExtErrorCode: "422",
		events.ExtReason:    ReasonNotCloudEvent,
		events.ExtTopic:     events.TopicOrders,
		events.ExtPartition: "2",
		events.ExtOffset:    "41",
		events.ExtOrigID:    "partition:2/offset:41",
		events.ExtKey:       "run-7",
		"kafkaheaderxtrace": "abc",
	}
	got := map[string]string{"id": dl.ID(), "type": dl.Type(), "source": dl.Source(), "subject": dl.Subject()}
	for k := range want {
		if _, done := got[k]; !done {
			got[k] = ext(dl, k)
		}
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s = %q, want %q", k, got[k], w)
		}
	}
	if !dl.Time().Equal(in.Time()) {
		t.Errorf("time %v, want the record's %v", dl.Time(), in.Time())
	}
	if why := reasonOf(t, dl); why != "not a CloudEvent (coffee.orders partition 2 offset 41): no ce_specversion header" {
		t.Errorf("reason %q", why)
	}
	if n := testutil.ToFloat64(r.h.quarantined.WithLabelValues(events.TopicOrders)); n != 1 {
		t.Errorf("quarantined counter %v, want 1", n)
	}
}

// The reason names what is wrong with a record that tried to be a
// CloudEvent (the KafkaSource turns ce_specversion into kafkaheadercespecversion).
func TestReasonNamesTheBrokenAttribute(t *testing.T) {
	tests := []struct {
		name    string
		headers map[string]string
		want    string
	}{
		{"no headers", nil, "no ce_specversion header"},
		{"old spec", map[string]string{"cespecversion": "0.3", "ceid": "x", "cesource": "/s", "cetype": "t"}, `specversion "0.3"`},
		{"no type", map[string]string{"cespecversion": "1.0", "ceid": "x", "cesource": "/s"}, "type"},
		{"bad time", map[string]string{"cespecversion": "1.0", "ceid": "x", "cesource": "/s", "cetype": "t", "cetime": "yesterday"}, `time "yesterday"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := whyNotCloudEvent(wrapped("slack.events", 0, 1, "", tt.headers, []byte("{}")))
			if !strings.Contains(got, tt.want) {
				t.Errorf("reason %q, want it to mention %q", got, tt.want)
			}
		})
	}
}

func TestRedeliveryProducesTheSameID(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	a := wrapped(events.TopicSlackEvents, 0, 7, "T1/C1", nil, []byte("garbage"))
	b := wrapped(events.TopicOrders, 0, 7, "T1/C1", nil, []byte("garbage")) // same partition/offset, other topic
	for _, e := range []event.Event{a, a, b} {
		if _, err := r.h.Handle(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	ids := map[string]int{}
	for _, rec := range r.deadLetters(t, 3) {
		dl, err := kafka.Event(rec)
		if err != nil {
			t.Fatal(err)
		}
		ids[dl.ID()]++
	}
	want := map[string]int{
		"quarantine:slack.events/partition:0/offset:7":  2, // redelivery: same id, readers dedupe
		"quarantine:coffee.orders/partition:0/offset:7": 1,
	}
	if fmt.Sprint(ids) != fmt.Sprint(want) {
		t.Fatalf("dead-letter ids %v, want %v", ids, want)
	}
}

func TestProduceFailureIsRetried(t *testing.T) {
	r := newRig(t)
	cl, err := kafka.NewClient(r.cluster.Brokers, function.Logger(context.Background()), nil)
	if err != nil {
		t.Fatal(err)
	}
	cl.Close() // Kafka unreachable for this producer
	h := New(cl, events.TopicDeadLetter, nil)
	_, err = h.Handle(context.Background(), wrapped(events.TopicOrders, 0, 1, "", nil, []byte("x")))
	if err == nil || function.IsPermanent(err) {
		t.Fatalf("Handle = %v, want a retryable error (the broker redelivers; nothing is lost)", err)
	}
}

func TestRejectsOtherTypes(t *testing.T) {
	r := newRig(t)
	e := wrapped(events.TopicOrders, 0, 1, "", nil, []byte("{}"))
	e.SetType(events.TypeOrderPlaced)
	if _, err := r.h.Handle(context.Background(), e); !function.IsPermanent(err) {
		t.Fatalf("Handle = %v, want a permanent error", err)
	}
}

// Through the real runtime: the event arrives over HTTP in binary mode as
// the broker sends it, the function answers 200 once the dead letter is on
// Kafka, and its log line carries the ce_id and the dead letter's id.
func TestOverHTTP(t *testing.T) {
	c := kafkatest.New(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	logs := &logbuf.Buffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	env := map[string]string{"KAFKA_BROKERS": strings.Join(c.Brokers, ","), "LOG_LEVEL": "info"}
	go func() { done <- function.Run(ctx, spec, func(k string) string { return env[k] }, logs, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(wait):
			t.Errorf("Run did not stop")
		}
	})

	value := []byte{0x01, 0x02, 0xfe, '{'}
	in := wrapped(events.TopicSlackEvents, 1, 3, "T1/C1", map[string]string{"xtrace": "abc"}, value)
	rctx, rcancel := context.WithTimeout(context.Background(), wait)
	defer rcancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, "http://"+ln.Addr().String()+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := cehttp.WriteRequest(binding.WithForceBinary(rctx), binding.ToMessage(&in), req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, want 200", resp.StatusCode)
	}
	recs := c.Consume(t, events.TopicDeadLetter, 1, wait)
	if len(recs) != 1 || !bytes.Equal(recs[0].Value, value) {
		t.Fatalf("dead letters %v, want one with the original bytes", recs)
	}
	var line map[string]any
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "record quarantined") {
			if err := json.Unmarshal([]byte(l), &line); err != nil {
				t.Fatal(err)
			}
		}
	}
	if line["ce_id"] != in.ID() || line["dead_letter_id"] != "quarantine:slack.events/partition:1/offset:3" || line["topic"] != events.TopicSlackEvents {
		t.Fatalf("log line %v, want ce_id, dead_letter_id and topic\nlogs:\n%s", line, logs.String())
	}
}
