package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/coffeebuddy/coffeebuddy/eventing/standin"
	"github.com/coffeebuddy/coffeebuddy/shared/events"
	"github.com/coffeebuddy/coffeebuddy/shared/kafka"
	"github.com/coffeebuddy/coffeebuddy/shared/kafka/kafkatest"
	"github.com/twmb/franz-go/pkg/kgo"
)

// wait bounds every wait; nothing here sleeps to synchronise.
const wait = 30 * time.Second

// cli runs the command against c and returns its exit status and output.
func cli(t *testing.T, c *kafkatest.Cluster, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	env := map[string]string{"KAFKA_BROKERS": strings.Join(c.Brokers, ",")}
	code := run(context.Background(), args, func(k string) string { return env[k] }, &out, &errOut)
	t.Logf("deadletters %s → %d\n%s%s", strings.Join(args, " "), code, out.String(), errOut.String())
	return code, out.String(), errOut.String()
}

func mustCLI(t *testing.T, c *kafkatest.Cluster, args ...string) string {
	t.Helper()
	code, out, errOut := cli(t, c, args...)
	if code != 0 {
		t.Fatalf("deadletters %v: exit %d: %s", args, code, errOut)
	}
	return out
}

func produce(t *testing.T, c *kafkatest.Cluster, rs ...*kgo.Record) {
	t.Helper()
	cl, err := kafka.NewClient(c.Brokers, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func header(r *kgo.Record, k string) (string, bool) {
	for _, h := range r.Headers {
		if h.Key == k {
			return string(h.Value), true
		}
	}
	return "", false
}

func pos(r *kgo.Record) string { return fmt.Sprintf("%d:%d", r.Partition, r.Offset) }

// ---- the stand-in path: a subscriber answering 400 ----

const ns = "cbtest"

var manifests = map[string]string{
	"broker.yaml": `apiVersion: eventing.knative.dev/v1
kind: Broker
metadata:
  name: bus
  namespace: ` + ns + `
spec:
  delivery:
    retry: 1
    backoffPolicy: linear
    backoffDelay: PT0.01S
    deadLetterSink:
      ref:
        apiVersion: eventing.knative.dev/v1alpha1
        kind: KafkaSink
        name: dlq
`,
	"kafkasource.yaml": `apiVersion: sources.knative.dev/v1
kind: KafkaSource
metadata:
  name: topics
  namespace: ` + ns + `
spec:
  bootstrapServers: [ignored:9092]
  topics: [slack.events, coffee.orders]
  consumerGroup: src
  sink:
    ref:
      apiVersion: eventing.knative.dev/v1
      kind: Broker
      name: bus
`,
	"kafkasink.yaml": `apiVersion: eventing.knative.dev/v1alpha1
kind: KafkaSink
metadata:
  name: dlq
  namespace: ` + ns + `
spec:
  topic: coffee.deadletter
  bootstrapServers: [ignored:9092]
  contentMode: binary
`,
	"trigger-confirm.yaml":    trigger("order-confirm", events.TypeOrderPlaced),
	"trigger-quarantine.yaml": trigger("quarantine", standin.KafkaEventType),
}

func trigger(name, typ string) string {
	return fmt.Sprintf(`apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata:
  name: %s
  namespace: %s
spec:
  broker: bus
  filter:
    attributes:
      type: %s
  subscriber:
    ref:
      apiVersion: serving.knative.dev/v1
      kind: Service
      name: %s
`, name, ns, typ, name)
}

// subscriber is a CloudEvents endpoint answering status (and body) until
// changed.
type subscriber struct {
	srv    *httptest.Server
	got    chan event.Event
	status atomic.Int32
	body   string
}

func newSubscriber(t *testing.T, status int, body string) *subscriber {
	s := &subscriber{got: make(chan event.Event, 100), body: body}
	s.status.Store(int32(status))
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ev, err := binding.ToEvent(r.Context(), cehttp.NewMessageFromHttpRequest(r))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.got <- *ev
		code := int(s.status.Load())
		w.WriteHeader(code)
		if code >= 300 {
			io.WriteString(w, s.body)
		}
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *subscriber) next(t *testing.T) event.Event {
	t.Helper()
	select {
	case ev := <-s.got:
		return ev
	case <-time.After(wait):
		t.Fatalf("subscriber %s: nothing within %v", s.srv.URL, wait)
		return event.Event{}
	}
}

func startStandIn(t *testing.T, c *kafkatest.Cluster, subs map[string]*subscriber) {
	t.Helper()
	dir := t.TempDir()
	for name, body := range manifests {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	si, err := standin.New(standin.Config{
		Dir: dir, Brokers: c.Brokers,
		Resolve: func(kind, name string) (string, error) {
			if s, ok := subs[name]; ok && kind == "Service" {
				return s.srv.URL + "/", nil
			}
			return "", fmt.Errorf("no %s/%s", kind, name)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- si.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(wait):
			t.Errorf("stand-in did not stop")
		}
	})
	select {
	case <-si.Ready():
	case err := <-done:
		t.Fatalf("stand-in: %v", err)
	case <-time.After(wait):
		t.Fatal("stand-in not ready")
	}
}

// A subscriber answers 400 (permanent) to an order.placed and the
// quarantine function is down (503) when a raw record arrives: the stand-in
// dead-letters both. list, inspect and replay them; after the fix the
// replayed event reaches the subscriber with the same id and data.
func TestStandInDeadLettersListInspectReplay(t *testing.T) {
	c := kafkatest.New(t)
	confirm := newSubscriber(t, http.StatusBadRequest, "permanent: run 42 not found\n")
	quarantine := newSubscriber(t, http.StatusServiceUnavailable, "circuit open")
	startStandIn(t, c, map[string]*subscriber{"order-confirm": confirm, "quarantine": quarantine})

	placed := event.New()
	placed.SetID("ce-placed-1")
	placed.SetType(events.TypeOrderPlaced)
	placed.SetSource("/coffeebuddy/order-place")
	placed.SetSubject("run-42")
	placed.SetExtension(kafka.ExtPartitionKey, "run-42")
	if err := placed.SetData(event.ApplicationJSON, map[string]any{"run_id": "run-42", "user_id": "U1", "item": "flat white"}); err != nil {
		t.Fatal(err)
	}
	rec, err := kafka.Record(events.TopicOrders, "", placed)
	if err != nil {
		t.Fatal(err)
	}
	raw := &kgo.Record{Topic: events.TopicSlackEvents, Key: []byte("k9"), Value: []byte(`{"legacy":true}`),
		Headers: []kgo.RecordHeader{{Key: "X-Trace", Value: []byte("abc")}}}
	produce(t, c, rec, raw)

	dls := c.Consume(t, events.TopicDeadLetter, 2, wait)
	if len(dls) != 2 {
		t.Fatalf("%d dead letters, want 2", len(dls))
	}
	var ceDL, rawDL *kgo.Record
	for _, r := range dls {
		if id, _ := header(r, "ce_id"); id == placed.ID() {
			ceDL = r
		} else {
			rawDL = r
		}
	}
	if ceDL == nil || rawDL == nil {
		t.Fatal("want one dead letter for the event and one for the raw record")
	}

	// list: one line each, with code, destination and the decoded reason.
	out := mustCLI(t, c, "list")
	lines := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) > 0 {
			lines[f[0]] = l
		}
	}
	for _, want := range []string{events.TypeOrderPlaced, "ce-placed-1", confirm.srv.URL, " 400 ", "permanent: run 42 not found"} {
		if !strings.Contains(lines[pos(ceDL)], want) {
			t.Errorf("list line for %s lacks %q: %q", pos(ceDL), want, lines[pos(ceDL)])
		}
	}
	for _, want := range []string{standin.KafkaEventType, quarantine.srv.URL, " 503 ", "circuit open"} {
		if !strings.Contains(lines[pos(rawDL)], want) {
			t.Errorf("list line for %s lacks %q: %q", pos(rawDL), want, lines[pos(rawDL)])
		}
	}
	if !strings.Contains(out, "2 dead letter(s) on coffee.deadletter") {
		t.Errorf("list footer missing:\n%s", out)
	}

	// inspect: headers and the payload, pretty.
	out = mustCLI(t, c, "inspect", pos(ceDL))
	for _, want := range []string{
		"ce_id: ce-placed-1", "ce_type: " + events.TypeOrderPlaced, "ce_knativeerrorcode: 400",
		"ce_partitionkey: run-42", "key:       run-42", "reason:    permanent: run 42 not found",
		"\n    \"item\": \"flat white\",\n", "replay:    would produce to coffee.orders",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("inspect lacks %q:\n%s", want, out)
		}
	}
	out = mustCLI(t, c, "inspect", pos(rawDL))
	for _, want := range []string{"ce_kafkaheaderxtrace: abc", "ce_key: k9", "original:  raw record (not a CloudEvent) from slack.events",
		"\"legacy\": true", "replay:    would produce to slack.events"} {
		if !strings.Contains(out, want) {
			t.Errorf("inspect lacks %q:\n%s", want, out)
		}
	}

	// The fix is deployed; replay. The subscriber gets the same event.
	confirm.status.Store(http.StatusOK)
	if got := confirm.next(t); got.ID() != placed.ID() { // the first, rejected delivery
		t.Fatalf("first delivery %s", got.ID())
	}
	out = mustCLI(t, c, "replay", pos(ceDL))
	if !strings.Contains(out, "→ coffee.orders") || !strings.Contains(out, "id ce-placed-1") {
		t.Errorf("replay said %q", out)
	}
	got := confirm.next(t)
	if got.ID() != placed.ID() || got.Type() != placed.Type() || string(got.Data()) != string(placed.Data()) || got.Subject() != "run-42" {
		t.Fatalf("replayed %s %s %s, want %s %s", got.ID(), got.Type(), got.Data(), placed.ID(), placed.Data())
	}
	for _, x := range []string{standin.ExtErrorCode, standin.ExtErrorDest, standin.ExtErrorData} {
		if _, ok := got.Extensions()[x]; ok {
			t.Errorf("replayed event still carries %s", x)
		}
	}
	if pk := fmt.Sprint(got.Extensions()[kafka.ExtPartitionKey]); pk != "run-42" {
		t.Errorf("partitionkey %q", pk)
	}
	orders := c.Consume(t, events.TopicOrders, 2, wait)
	if len(orders) != 2 || string(orders[1].Key) != "run-42" || orders[1].Partition != orders[0].Partition {
		t.Fatalf("coffee.orders: want the original and the replay, same key and partition; got %d", len(orders))
	}

	// The raw record goes back to slack.events with its bytes, key and
	// header (name as the KafkaSource kept it).
	out = mustCLI(t, c, "replay", pos(rawDL))
	if !strings.Contains(out, "→ slack.events") || !strings.Contains(out, "original raw record") {
		t.Errorf("replay said %q", out)
	}
	se := c.Consume(t, events.TopicSlackEvents, 2, wait)
	if len(se) != 2 {
		t.Fatalf("slack.events: %d records, want 2", len(se))
	}
	r := se[1]
	if h, _ := header(r, "xtrace"); string(r.Value) != `{"legacy":true}` || string(r.Key) != "k9" || h != "abc" || len(r.Headers) != 1 {
		t.Fatalf("replayed raw record: key %q value %q headers %v", r.Key, r.Value, r.Headers)
	}
}

// ---- quarantined raw records (as functions/quarantine writes them) ----

// quarantined builds the dead letter functions/quarantine produces for a
// raw record read from topic at partition/offset.
func quarantined(t *testing.T, topic string, partition int32, offset int64, key string, value []byte, headers map[string]string) *kgo.Record {
	t.Helper()
	e := event.New()
	e.SetID(fmt.Sprintf("quarantine:%s/partition:%d/offset:%d", topic, partition, offset))
	e.SetType(standin.KafkaEventType)
	e.SetSource("/apis/v1/namespaces/coffeebuddy/kafkasources/coffeebuddy-topics#" + topic)
	e.SetSubject(fmt.Sprintf("partition:%d#%d", partition, offset))
	e.SetExtension("key", key)
	for k, v := range headers {
		e.SetExtension("kafkaheader"+k, v)
	}
	reason := fmt.Sprintf("not a CloudEvent (%s partition %d offset %d): no ce_specversion header", topic, partition, offset)
	e.SetExtension(standin.ExtErrorCode, 422)
	e.SetExtension(standin.ExtErrorData, base64.StdEncoding.EncodeToString([]byte(reason)))
	e.SetExtension(events.ExtReason, "not a CloudEvent")
	e.SetExtension(events.ExtTopic, topic)
	e.SetExtension(events.ExtPartition, fmt.Sprint(partition))
	e.SetExtension(events.ExtOffset, fmt.Sprint(offset))
	e.SetExtension(events.ExtOrigID, fmt.Sprintf("partition:%d/offset:%d", partition, offset))
	e.DataEncoded = value
	r, err := kafka.Record(events.TopicDeadLetter, key, e)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestQuarantinedRecordReplaysToItsTopic(t *testing.T) {
	c := kafkatest.New(t)
	value := []byte{0xff, 0x00, 'o', 'l', 'd', 0x80}
	produce(t, c, quarantined(t, events.TopicOrders, 2, 41, "run-7", value, map[string]string{"xtrace": "abc", "tenant": "acme"}))
	dl := c.Consume(t, events.TopicDeadLetter, 1, wait)[0]

	out := mustCLI(t, c, "list", "-n", "10")
	for _, want := range []string{"quarantine:coffee.orders/partition:2/offset:41", " 422 ", "not a CloudEvent (coffee.orders partition 2 offset 41): no ce_specversion"} {
		if !strings.Contains(out, want) {
			t.Errorf("list lacks %q:\n%s", want, out)
		}
	}
	out = mustCLI(t, c, "inspect", pos(dl))
	for _, want := range []string{"original:  raw record (not a CloudEvent) from coffee.orders 2:41",
		"payload (6 bytes):", "ff 00 6f 6c 64 80", "ce_coffeebuddytopic: coffee.orders"} {
		if !strings.Contains(out, want) {
			t.Errorf("inspect lacks %q:\n%s", want, out)
		}
	}

	mustCLI(t, c, "replay", pos(dl))
	got := c.Consume(t, events.TopicOrders, 1, wait)
	if len(got) != 1 {
		t.Fatal("nothing replayed to coffee.orders")
	}
	r := got[0]
	tenant, _ := header(r, "tenant")
	xtrace, _ := header(r, "xtrace")
	if !bytes.Equal(r.Value, value) || string(r.Key) != "run-7" || tenant != "acme" || xtrace != "abc" || len(r.Headers) != 2 {
		t.Fatalf("replayed key %q value %x headers %v", r.Key, r.Value, r.Headers)
	}

	// --to-topic wins, either side of the position.
	mustCLI(t, c, "replay", "--to-topic", events.TopicCompletions, pos(dl))
	mustCLI(t, c, "replay", pos(dl), "-to-topic", events.TopicCompletions)
	if n := len(c.Consume(t, events.TopicCompletions, 2, wait)); n != 2 {
		t.Fatalf("%d records on %s, want 2", n, events.TopicCompletions)
	}
}

func TestListShowsTheLastNAndMarksDuplicates(t *testing.T) {
	c := kafkatest.New(t)
	base := time.Date(2025, 3, 4, 9, 0, 0, 0, time.UTC)
	var recs []*kgo.Record
	for i, id := range []string{"a", "b", "c", "c", "d"} { // c redelivered
		e := event.New()
		e.SetID("ce-" + id)
		e.SetType(events.TypeRunClosed)
		e.SetSource("/test")
		e.SetExtension(standin.ExtErrorCode, 500)
		e.SetExtension(standin.ExtErrorData, base64.StdEncoding.EncodeToString([]byte(strings.Repeat("boom ", 40))))
		r, err := kafka.Record(events.TopicDeadLetter, fmt.Sprint("key-", i), e)
		if err != nil {
			t.Fatal(err)
		}
		r.Timestamp = base.Add(time.Duration(i) * time.Minute)
		recs = append(recs, r)
	}
	produce(t, c, recs...)
	out := mustCLI(t, c, "list", "-n", "3")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 5 { // header, 3 letters, footer
		t.Fatalf("want 3 dead letters:\n%s", out)
	}
	for i, want := range []string{"ce-c", "ce-c", "ce-d"} {
		if !strings.Contains(lines[i+1], " "+want+" ") {
			t.Errorf("line %d %q, want %s", i+1, lines[i+1], want)
		}
	}
	if !strings.Contains(lines[2], "[dup of ") || strings.Contains(lines[1], "[dup") {
		t.Errorf("second ce-c should be marked a duplicate:\n%s", out)
	}
	if reason := strings.TrimSpace(lines[1][strings.Index(lines[1], "boom"):]); !strings.HasSuffix(reason, "…") || len([]rune(reason)) != 80 {
		t.Errorf("reason %q, want it cut to 80 characters", reason)
	}
}

func TestReplayRecordStripsOnlyDeadLetterExtensions(t *testing.T) {
	e := event.New()
	e.SetID("ce-1")
	e.SetType(events.TypeRunCompleted)
	e.SetSource("/coffeebuddy/run-complete")
	e.SetExtension(kafka.ExtPartitionKey, "run-1")
	e.SetExtension("traceparent", "00-abc-def-01")
	for _, x := range deadLetterExtensions {
		e.SetExtension(x, "x")
	}
	_ = e.SetData(event.ApplicationJSON, map[string]string{"run_id": "run-1"})
	rec, err := kafka.Record(events.TopicDeadLetter, "", e)
	if err != nil {
		t.Fatal(err)
	}
	out, err := ReplayRecord(letterOf(rec), "")
	if err != nil {
		t.Fatal(err)
	}
	back, err := kafka.Event(out)
	if err != nil {
		t.Fatal(err)
	}
	if out.Topic != events.TopicCompletions || string(out.Key) != "run-1" || back.ID() != "ce-1" || string(back.Data()) != string(e.Data()) {
		t.Fatalf("replay record %s key %s id %s data %s", out.Topic, out.Key, back.ID(), back.Data())
	}
	if got := fmt.Sprint(back.Extensions()); got != "map[partitionkey:run-1 traceparent:00-abc-def-01]" {
		t.Errorf("extensions %s, want only the original ones", got)
	}
}

func TestErrors(t *testing.T) {
	c := kafkatest.New(t)
	unknown := event.New()
	unknown.SetID("u1")
	unknown.SetType("com.example.unknown")
	unknown.SetSource("/x")
	r, err := kafka.Record(events.TopicDeadLetter, "k", unknown)
	if err != nil {
		t.Fatal(err)
	}
	garbage := &kgo.Record{Topic: events.TopicDeadLetter, Partition: 0, Value: []byte("junk")}
	produce(t, c, r, garbage)
	dls := c.Consume(t, events.TopicDeadLetter, 2, wait)
	var unknownPos, garbagePos string
	for _, d := range dls {
		if _, ok := header(d, "ce_id"); ok {
			unknownPos = pos(d)
		} else {
			garbagePos = pos(d)
		}
	}

	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{}, 2, "usage"},
		{[]string{"frob"}, 2, `unknown command "frob"`},
		{[]string{"inspect"}, 2, "inspect takes 1 argument"},
		{[]string{"inspect", "seven"}, 2, "want <partition>:<offset>"},
		{[]string{"inspect", "0:999"}, 1, "holds offsets"},
		{[]string{"inspect", "9:0"}, 1, "has no partition 9"},
		{[]string{"list", "-n", "0"}, 2, "-n must be at least 1"},
		{[]string{"replay", unknownPos}, 1, "give --to-topic"},
		{[]string{"replay", garbagePos}, 1, "give --to-topic"},
		{[]string{"-brokers", "", "list"}, 2, "no brokers"},
	}
	for _, tt := range tests {
		code, _, errOut := cli(t, c, tt.args...)
		if code != tt.code || !strings.Contains(errOut, tt.want) {
			t.Errorf("deadletters %v: exit %d %q, want %d and %q", tt.args, code, errOut, tt.code, tt.want)
		}
	}
	// With a topic the unknown type and the non-CloudEvent both replay.
	mustCLI(t, c, "replay", unknownPos, "--to-topic", events.TopicSlackRetry)
	mustCLI(t, c, "replay", garbagePos, "--to-topic", events.TopicSlackRetry)
	got := c.Consume(t, events.TopicSlackRetry, 2, wait)
	if len(got) != 2 {
		t.Fatalf("%d records on slack.retry, want 2", len(got))
	}
	// The list shows the non-CloudEvent for what it is.
	if out := mustCLI(t, c, "list"); !strings.Contains(out, "(not a CloudEvent)") {
		t.Errorf("list:\n%s", out)
	}
}
