package standin_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
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

// wait bounds every wait on a channel; nothing here sleeps to synchronise.
const wait = 30 * time.Second

const ns = "cbtest"

// ---- manifests ----

// baseManifests are a Broker (delivery defaults: 2 retries, tiny linear
// backoff, the DLQ KafkaSink), a KafkaSource over slack.events and
// coffee.orders, and the DLQ KafkaSink.
func baseManifests() map[string]string {
	return map[string]string{
		"broker.yaml": `apiVersion: eventing.knative.dev/v1
kind: Broker
metadata:
  name: bus
  namespace: ` + ns + `
  annotations:
    eventing.knative.dev/broker.class: Kafka
spec:
  delivery:
    retry: 2
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
		"kafkasink-dlq.yaml": `apiVersion: eventing.knative.dev/v1alpha1
kind: KafkaSink
metadata:
  name: dlq
  namespace: ` + ns + `
spec:
  topic: coffee.deadletter
  bootstrapServers: [ignored:9092]
  contentMode: binary
`,
	}
}

// trigger renders a Trigger on Broker bus; filter is "key: value" lines,
// delivery is the body of spec.delivery (empty: none).
func trigger(name, subscriber string, filter map[string]string, delivery string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata:\n  name: %s\n  namespace: %s\nspec:\n  broker: bus\n", name, ns)
	if len(filter) > 0 {
		b.WriteString("  filter:\n    attributes:\n")
		keys := make([]string, 0, len(filter))
		for k := range filter {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			fmt.Fprintf(&b, "      %s: %q\n", k, filter[k])
		}
	}
	if delivery != "" {
		b.WriteString("  delivery:\n")
		for _, l := range strings.Split(strings.TrimSpace(delivery), "\n") {
			b.WriteString("    " + l + "\n")
		}
	}
	fmt.Fprintf(&b, "  subscriber:\n    ref:\n      apiVersion: serving.knative.dev/v1\n      kind: Service\n      name: %s\n", subscriber)
	return b.String()
}

// withDeliveryOrder sets a rendered Trigger's delivery-order annotation
// (Knative's default, when absent, is unordered).
func withDeliveryOrder(doc string, order standin.DeliveryOrder) string {
	return strings.Replace(doc, "metadata:\n", "metadata:\n  annotations:\n    "+standin.DeliveryOrderAnnotation+": "+string(order)+"\n", 1)
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	// Write then rename, so a polling stand-in never sees half a file.
	for name, body := range files {
		tmp := filepath.Join(dir, ".tmp-"+name)
		if err := os.WriteFile(tmp, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
}

// ---- subscribers ----

type received struct {
	ev     event.Event
	at     time.Time
	binary bool
}

// reply is what a subscriber answers.
type reply struct {
	status int
	header map[string]string
	body   string
	event  *event.Event // a reply event, binary mode
}

// subscriber is a real HTTP CloudEvents endpoint; answer decides the reply
// to the n-th request (n from 1).
type subscriber struct {
	srv    *httptest.Server
	got    chan received
	n      atomic.Int64
	answer atomic.Pointer[func(n int64, ev event.Event) reply]
}

func newSubscriber(t *testing.T, answer func(n int64, ev event.Event) reply) *subscriber {
	t.Helper()
	s := &subscriber{got: make(chan received, 1000)}
	s.setAnswer(answer)
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		msg := cehttp.NewMessageFromHttpRequest(r)
		bin := msg.ReadEncoding() == binding.EncodingBinary
		ev, err := binding.ToEvent(r.Context(), msg)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		n := s.n.Add(1)
		s.got <- received{ev: *ev, at: time.Now(), binary: bin}
		a := (*s.answer.Load())(n, *ev)
		if a.status == 0 {
			a.status = http.StatusOK
		}
		for k, v := range a.header {
			w.Header().Set(k, v)
		}
		if a.event != nil {
			if err := cehttp.WriteResponseWriter(r.Context(), binding.ToMessage(a.event), a.status, w); err != nil {
				t.Errorf("write reply: %v", err)
			}
			return
		}
		w.WriteHeader(a.status)
		io.WriteString(w, a.body)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *subscriber) setAnswer(f func(n int64, ev event.Event) reply) {
	if f == nil {
		f = func(int64, event.Event) reply { return reply{} }
	}
	s.answer.Store(&f)
}

// next waits for the subscriber's next request.
func (s *subscriber) next(t *testing.T) received {
	t.Helper()
	select {
	case r := <-s.got:
		return r
	case <-time.After(wait):
		t.Fatalf("subscriber %s: no request within %v", s.srv.URL, wait)
		return received{}
	}
}

func ok(int64, event.Event) reply { return reply{} }

func status(code int) func(int64, event.Event) reply {
	return func(int64, event.Event) reply { return reply{status: code} }
}

// ---- stand-in ----

type env struct {
	t       *testing.T
	dir     string
	cluster *kafkatest.Cluster
	subs    map[string]*subscriber
	prod    *kgo.Client
	log     *slog.Logger
}

func newEnv(t *testing.T, files map[string]string) *env {
	t.Helper()
	e := &env{t: t, dir: t.TempDir(), cluster: kafkatest.New(t), subs: map[string]*subscriber{}}
	e.log = testLogger(t)
	writeFiles(t, e.dir, files)
	prod, err := kgo.NewClient(kgo.SeedBrokers(e.cluster.Brokers...),
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(prod.Close)
	e.prod = prod
	return e
}

func (e *env) resolve(kind, name string) (string, error) {
	if s, ok := e.subs[name]; ok && kind == "Service" {
		return s.srv.URL + "/", nil
	}
	return "", fmt.Errorf("no subscriber %s/%s", kind, name)
}

func (e *env) config() standin.Config {
	return standin.Config{
		Dir: e.dir, Brokers: e.cluster.Brokers, Resolve: e.resolve, Logger: e.log,
		ReloadInterval: 20 * time.Millisecond,
	}
}

// start runs a stand-in until the returned stop is called (or the test
// ends) and waits until it is ready.
func (e *env) start(cfg standin.Config) (*standin.StandIn, func()) {
	e.t.Helper()
	return e.startWith(cfg, nil)
}

// startWith is start with a hook run between New and Run.
func (e *env) startWith(cfg standin.Config, beforeRun func(*standin.StandIn)) (*standin.StandIn, func()) {
	t := e.t
	t.Helper()
	si, err := standin.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if beforeRun != nil {
		beforeRun(si)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- si.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(wait):
				t.Errorf("stand-in did not stop within %v", wait)
			}
		})
	}
	t.Cleanup(stop)
	select {
	case <-si.Ready():
	case err := <-done:
		t.Fatalf("Run returned early: %v", err)
	case <-time.After(wait):
		t.Fatalf("stand-in not ready within %v", wait)
	}
	return si, stop
}

var seq atomic.Int64

// newEvent builds a CloudEvent of type typ with JSON data.
func newEvent(typ string, data any) event.Event {
	ev := event.New()
	ev.SetID(fmt.Sprintf("ev-%d-%d", time.Now().UnixNano(), seq.Add(1)))
	ev.SetType(typ)
	ev.SetSource("/test")
	if err := ev.SetData(event.ApplicationJSON, data); err != nil {
		panic(err)
	}
	return ev
}

func (e *env) produce(topic, key string, ev event.Event) {
	e.t.Helper()
	r, err := kafka.Record(topic, key, ev)
	if err != nil {
		e.t.Fatal(err)
	}
	e.produceRecord(r)
}

func (e *env) produceRecord(r *kgo.Record) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := e.prod.ProduceSync(ctx, r).FirstErr(); err != nil {
		e.t.Fatalf("produce: %v", err)
	}
}

// testLogger logs into the test's output until the test ends.
func testLogger(t *testing.T) *slog.Logger {
	w := &testWriter{w: t.Output()}
	t.Cleanup(w.close) // registered first, so it runs last
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct {
	mu     sync.Mutex
	w      io.Writer
	closed bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return len(p), nil
	}
	return w.w.Write(p)
}

func (w *testWriter) close() {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
}

func header(r *kgo.Record, k string) string {
	for _, h := range r.Headers {
		if h.Key == k {
			return string(h.Value)
		}
	}
	return ""
}

// ---- tests ----

func TestFilterRouting(t *testing.T) {
	files := baseManifests()
	// Ordered, so each subscriber's events arrive in partition order.
	files["trigger-a.yaml"] = withDeliveryOrder(trigger("route-a", "sub-a", map[string]string{"type": "test.a"}, ""), standin.Ordered)
	files["trigger-b.yaml"] = withDeliveryOrder(trigger("route-b", "sub-b", map[string]string{"type": "test.b", "flavour": "mint"}, ""), standin.Ordered)
	e := newEnv(t, files)
	a, b := newSubscriber(t, ok), newSubscriber(t, ok)
	e.subs["sub-a"], e.subs["sub-b"] = a, b
	e.start(e.config())

	a1, b1 := newEvent("test.a", map[string]int{"n": 1}), newEvent("test.b", map[string]int{"n": 1})
	b1.SetExtension("flavour", "mint")
	bWrongExt := newEvent("test.b", map[string]int{"n": 2}) // no flavour: filtered out
	a2 := newEvent("test.a", map[string]int{"n": 2})
	b2 := newEvent("test.b", map[string]int{"n": 3})
	b2.SetExtension("flavour", "mint")
	// One key: one partition, so each trigger sees them in this order.
	for _, ev := range []event.Event{a1, b1, bWrongExt, a2, b2} {
		e.produce(events.TopicSlackEvents, "run-1", ev)
	}
	if got := a.next(t); got.ev.ID() != a1.ID() || !got.binary {
		t.Fatalf("sub-a first got %s (binary %v), want %s in binary mode", got.ev.ID(), got.binary, a1.ID())
	}
	if got := a.next(t); got.ev.ID() != a2.ID() {
		t.Fatalf("sub-a second got %s (%s), want %s: type-b events leaked to sub-a", got.ev.ID(), got.ev.Type(), a2.ID())
	}
	if got := b.next(t); got.ev.ID() != b1.ID() {
		t.Fatalf("sub-b first got %s, want %s", got.ev.ID(), b1.ID())
	}
	if got := b.next(t); got.ev.ID() != b2.ID() {
		t.Fatalf("sub-b second got %s (%s), want %s: filter on extension not applied", got.ev.ID(), got.ev.Type(), b2.ID())
	}
	if a.next0(t) != "" || b.next0(t) != "" {
		t.Fatal("unexpected extra deliveries")
	}
}

// next0 returns the ID of a request already queued, or "" (non-blocking).
func (s *subscriber) next0(*testing.T) string {
	select {
	case r := <-s.got:
		return r.ev.ID()
	default:
		return ""
	}
}

func TestRetriedStatusesThenSuccess(t *testing.T) {
	statuses := []int{500, 503, 404, 408, 409, 429}
	files := baseManifests()
	e := newEnv(t, files)
	for _, code := range statuses {
		name := fmt.Sprintf("retry-%d", code)
		files[name+".yaml"] = trigger(name, name, map[string]string{"type": "test." + name},
			"retry: 3\nbackoffPolicy: linear\nbackoffDelay: PT0.01S")
		e.subs[name] = newSubscriber(t, func(n int64, _ event.Event) reply {
			if n <= 2 {
				return reply{status: code, body: "try again"}
			}
			return reply{}
		})
	}
	writeFiles(t, e.dir, files)
	e.start(e.config())

	ids := map[int]string{}
	for _, code := range statuses {
		ev := newEvent(fmt.Sprintf("test.retry-%d", code), map[string]int{"code": code})
		ids[code] = ev.ID()
		e.produce(events.TopicSlackEvents, fmt.Sprint(code), ev)
	}
	for _, code := range statuses {
		s := e.subs[fmt.Sprintf("retry-%d", code)]
		for attempt := 1; attempt <= 3; attempt++ {
			if got := s.next(t); got.ev.ID() != ids[code] {
				t.Fatalf("status %d attempt %d: got %s, want %s", code, attempt, got.ev.ID(), ids[code])
			}
		}
	}
	// Nothing was dead-lettered: a sentinel produced to the DLQ topic is
	// the first record there.
	sentinel := newEvent("test.sentinel", nil)
	e.produce(events.TopicDeadLetter, "", sentinel)
	recs := e.cluster.Consume(t, events.TopicDeadLetter, 1, wait)
	if len(recs) != 1 || header(recs[0], "ce_id") != sentinel.ID() {
		t.Fatalf("dead-letter topic has records besides the sentinel: %d", len(recs))
	}
	for _, code := range statuses {
		if s := e.subs[fmt.Sprintf("retry-%d", code)]; s.n.Load() != 3 {
			t.Errorf("status %d: %d attempts, want 3", code, s.n.Load())
		}
	}
}

func TestRetryAfterHonoured(t *testing.T) {
	files := baseManifests()
	files["t.yaml"] = trigger("limited", "limited", nil, "retry: 1\nbackoffPolicy: linear\nbackoffDelay: PT0.01S")
	e := newEnv(t, files)
	s := newSubscriber(t, func(n int64, _ event.Event) reply {
		if n == 1 {
			return reply{status: http.StatusTooManyRequests, header: map[string]string{"Retry-After": "1"}}
		}
		return reply{}
	})
	e.subs["limited"] = s
	e.start(e.config())
	e.produce(events.TopicSlackEvents, "k", newEvent("test.limited", nil))
	first, second := s.next(t), s.next(t)
	if gap := second.at.Sub(first.at); gap < time.Second {
		t.Fatalf("retried %v after a 429 with Retry-After: 1, want at least 1s", gap)
	}
}

func TestBadRequestIsDeadLetteredAtOnce(t *testing.T) {
	files := baseManifests()
	files["t.yaml"] = trigger("strict", "strict", map[string]string{"type": "test.strict"},
		`retry: 5
backoffPolicy: exponential
backoffDelay: PT0.01S
deadLetterSink:
  ref:
    apiVersion: eventing.knative.dev/v1alpha1
    kind: KafkaSink
    name: dlq`)
	e := newEnv(t, files)
	long := strings.Repeat("x", 2000) // knativeerrordata is cut to 1 KiB
	s := newSubscriber(t, func(int64, event.Event) reply {
		return reply{status: http.StatusBadRequest, body: "bad payload " + long}
	})
	e.subs["strict"] = s
	e.start(e.config())

	ev := newEvent("test.strict", map[string]string{"drink": "latte"})
	ev.SetSubject("run-7")
	e.produce(events.TopicSlackEvents, "run-7", ev)

	if got := s.next(t); got.ev.ID() != ev.ID() {
		t.Fatalf("got %s, want %s", got.ev.ID(), ev.ID())
	}
	recs := e.cluster.Consume(t, events.TopicDeadLetter, 1, wait)
	if len(recs) != 1 {
		t.Fatalf("dead-letter topic: %d records, want 1", len(recs))
	}
	dl, err := kafka.Event(recs[0])
	if err != nil {
		t.Fatalf("dead-lettered record is not a CloudEvent: %v", err)
	}
	if dl.ID() != ev.ID() || dl.Type() != ev.Type() || dl.Subject() != "run-7" {
		t.Errorf("dead-lettered %s/%s/%s, want the original event", dl.ID(), dl.Type(), dl.Subject())
	}
	if string(dl.Data()) != string(ev.Data()) {
		t.Errorf("dead-lettered data %s, want %s", dl.Data(), ev.Data())
	}
	if string(recs[0].Key) != "run-7" {
		t.Errorf("dead-letter key %q, want the record's key run-7", recs[0].Key)
	}
	ext := dl.Extensions()
	if got := fmt.Sprint(ext[standin.ExtErrorCode]); got != "400" {
		t.Errorf("knativeerrorcode = %q, want 400", got)
	}
	if got, want := fmt.Sprint(ext[standin.ExtErrorDest]), s.srv.URL+"/"; got != want {
		t.Errorf("knativeerrordest = %q, want %q", got, want)
	}
	data := fmt.Sprint(ext[standin.ExtErrorData])
	if len(data) != 1024 {
		t.Errorf("knativeerrordata is %d characters, want it cut to 1024", len(data))
	}
	full := base64.StdEncoding.EncodeToString([]byte("bad payload " + long))
	if data != full[:1024] {
		t.Errorf("knativeerrordata is not the base64 of the response body")
	}
	// Not retried.
	if n := s.n.Load(); n != 1 {
		t.Errorf("%d attempts, want 1", n)
	}
}

func TestDeadLetterAfterLastRetry(t *testing.T) {
	files := baseManifests()
	// No delivery on the Trigger: the Broker's defaults apply (2 retries,
	// dead-letter to the KafkaSink).
	files["t.yaml"] = trigger("flaky", "flaky", map[string]string{"type": "test.flaky"}, "")
	e := newEnv(t, files)
	s := newSubscriber(t, status(http.StatusInternalServerError))
	e.subs["flaky"] = s
	e.start(e.config())
	ev := newEvent("test.flaky", map[string]int{"n": 1})
	e.produce(events.TopicSlackEvents, "k1", ev)

	recs := e.cluster.Consume(t, events.TopicDeadLetter, 1, wait)
	if len(recs) != 1 {
		t.Fatalf("dead-letter topic: %d records, want 1", len(recs))
	}
	dl, err := kafka.Event(recs[0])
	if err != nil {
		t.Fatal(err)
	}
	if dl.ID() != ev.ID() || fmt.Sprint(dl.Extensions()[standin.ExtErrorCode]) != "500" {
		t.Fatalf("dead-lettered %s code %v, want %s code 500", dl.ID(), dl.Extensions()[standin.ExtErrorCode], ev.ID())
	}
	for i := 1; i <= 3; i++ {
		if got := s.next(t); got.ev.ID() != ev.ID() {
			t.Fatalf("attempt %d got %s", i, got.ev.ID())
		}
	}
	if n := s.n.Load(); n != 3 {
		t.Fatalf("%d attempts, want 1 + 2 retries", n)
	}
}

func TestBackoffShape(t *testing.T) {
	const expDelay, linDelay = 30 * time.Millisecond, 50 * time.Millisecond
	files := baseManifests()
	files["exp.yaml"] = trigger("exp", "exp", map[string]string{"type": "test.exp"},
		"retry: 4\nbackoffPolicy: exponential\nbackoffDelay: PT0.03S")
	files["lin.yaml"] = trigger("lin", "lin", map[string]string{"type": "test.lin"},
		"retry: 4\nbackoffPolicy: linear\nbackoffDelay: PT0.05S")
	e := newEnv(t, files)
	exp, lin := newSubscriber(t, status(500)), newSubscriber(t, status(503))
	e.subs["exp"], e.subs["lin"] = exp, lin
	e.start(e.config())
	e.produce(events.TopicSlackEvents, "a", newEvent("test.exp", nil))
	e.produce(events.TopicSlackEvents, "b", newEvent("test.lin", nil))

	gaps := func(s *subscriber) []time.Duration {
		var at []time.Time
		for range 5 { // 1 attempt + 4 retries
			at = append(at, s.next(t).at)
		}
		var g []time.Duration
		for i := 1; i < len(at); i++ {
			g = append(g, at[i].Sub(at[i-1]))
		}
		return g
	}
	ge, gl := gaps(exp), gaps(lin)
	t.Logf("exponential gaps %v, linear gaps %v", ge, gl)
	// Timers never fire early, so each gap is at least its backoff:
	// exponential delay*2^n (60, 120, 240, 480ms), linear delay*n (50, 100,
	// 150, 200ms). These lower bounds already tell the shapes apart.
	for i, g := range ge {
		if low := expDelay << (i + 1); g < low {
			t.Errorf("exponential gap %d = %v, want ≥ %v", i+1, g, low)
		}
		if i > 0 && g <= ge[i-1] {
			t.Errorf("exponential gap %d (%v) is not longer than gap %d (%v)", i+1, g, i, ge[i-1])
		}
	}
	for i, g := range gl {
		if low := linDelay * time.Duration(i+1); g < low {
			t.Errorf("linear gap %d = %v, want ≥ %v", i+1, g, low)
		}
	}
	// Linear does not double: its 4th gap is far below delay*2^4 (800ms).
	if gl[3] >= linDelay<<4 {
		t.Errorf("linear gaps %v grow like exponential ones", gl)
	}
}

func TestCommitOnlyAfterSuccess(t *testing.T) {
	files := baseManifests()
	files["t.yaml"] = trigger("durable", "durable", map[string]string{"type": "test.durable"},
		"retry: 10000\nbackoffPolicy: linear\nbackoffDelay: PT0.01S")
	e := newEnv(t, files)
	s := newSubscriber(t, status(http.StatusServiceUnavailable))
	e.subs["durable"] = s
	_, stop := e.start(e.config())

	ev := newEvent("test.durable", map[string]string{"order": "flat white"})
	e.produce(events.TopicSlackEvents, "run-9", ev)
	if got := s.next(t); got.ev.ID() != ev.ID() {
		t.Fatalf("got %s, want %s", got.ev.ID(), ev.ID())
	}
	stop() // while the subscriber keeps failing
	for len(s.got) > 0 {
		<-s.got
	}

	// A new stand-in (same consumer groups) delivers the same event again.
	s.setAnswer(ok)
	_, stop2 := e.start(e.config())
	if got := s.next(t); got.ev.ID() != ev.ID() {
		t.Fatalf("after restart got %s, want the uncommitted %s again", got.ev.ID(), ev.ID())
	}
	stop2()

	// Now it was committed: a third stand-in delivers only what is new.
	for len(s.got) > 0 {
		<-s.got
	}
	e.start(e.config())
	ev2 := newEvent("test.durable", map[string]string{"order": "mocha"})
	e.produce(events.TopicSlackEvents, "run-9", ev2)
	if got := s.next(t); got.ev.ID() != ev2.ID() {
		t.Fatalf("after a committed delivery got %s, want only the new %s", got.ev.ID(), ev2.ID())
	}
}

func TestOrderingWithinPartition(t *testing.T) {
	files := baseManifests()
	files["t.yaml"] = withDeliveryOrder(trigger("ordered", "ordered", nil, "retry: 3\nbackoffPolicy: linear\nbackoffDelay: PT0.01S"), standin.Ordered)
	e := newEnv(t, files)
	var mu sync.Mutex
	failed := map[string]bool{}
	// Every third event fails once: the ones after it must wait.
	s := newSubscriber(t, func(_ int64, ev event.Event) reply {
		mu.Lock()
		defer mu.Unlock()
		var n int
		fmt.Sscan(ev.Subject(), &n)
		if n%3 == 0 && !failed[ev.ID()] {
			failed[ev.ID()] = true
			return reply{status: 500}
		}
		return reply{}
	})
	e.subs["ordered"] = s
	e.start(e.config())

	const count = 30
	var want []string
	for i := range count {
		ev := newEvent("test.seq", map[string]int{"i": i})
		ev.SetSubject(fmt.Sprint(i))
		want = append(want, ev.ID())
		e.produce(events.TopicOrders, "one-run", ev)
	}
	var got []string
	for len(got) < count {
		r := s.next(t)
		if len(got) > 0 && got[len(got)-1] == r.ev.ID() {
			continue // the retry of a failed one
		}
		got = append(got, r.ev.ID())
	}
	if !slices.Equal(got, want) {
		t.Fatalf("delivery order differs from partition order:\n got %v\nwant %v", got, want)
	}
}

func TestEditingTriggerChangesRouting(t *testing.T) {
	files := baseManifests()
	files["trigger-edit.yaml"] = trigger("editable", "edit", map[string]string{"type": "test.before"}, "")
	e := newEnv(t, files)
	s := newSubscriber(t, ok)
	e.subs["edit"] = s
	reloaded := make(chan error, 10)
	cfg := e.config()
	cfg.OnReload = func(err error) { reloaded <- err }
	e.start(cfg)

	before := newEvent("test.before", nil)
	e.produce(events.TopicSlackEvents, "k", before)
	if got := s.next(t); got.ev.ID() != before.ID() {
		t.Fatalf("got %s, want %s", got.ev.ID(), before.ID())
	}

	// A broken edit keeps the old routing and reports the error.
	writeFiles(t, e.dir, map[string]string{"trigger-edit.yaml": "apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: [oops\n"})
	select {
	case err := <-reloaded:
		if err == nil || !strings.Contains(err.Error(), "trigger-edit.yaml") {
			t.Fatalf("reload of a malformed file: %v, want an error naming the file", err)
		}
	case <-time.After(wait):
		t.Fatal("no reload after a malformed edit")
	}

	writeFiles(t, e.dir, map[string]string{"trigger-edit.yaml": trigger("editable", "edit", map[string]string{"type": "test.after"}, "")})
	select {
	case err := <-reloaded:
		if err != nil {
			t.Fatalf("reload: %v", err)
		}
	case <-time.After(wait):
		t.Fatal("no reload after editing the Trigger")
	}
	old, after := newEvent("test.before", nil), newEvent("test.after", nil)
	e.produce(events.TopicSlackEvents, "k", old)
	e.produce(events.TopicSlackEvents, "k", after)
	if got := s.next(t); got.ev.ID() != after.ID() {
		t.Fatalf("after the edit got %s (%s), want %s (test.after)", got.ev.ID(), got.ev.Type(), after.ID())
	}
}

func TestFirePingAndSchedule(t *testing.T) {
	files := baseManifests()
	files["pingsource.yaml"] = `apiVersion: sources.knative.dev/v1
kind: PingSource
metadata:
  name: tick
  namespace: ` + ns + `
spec:
  schedule: "0 0 1 1 *"
  contentType: application/json
  data: '{"job":"sweep"}'
  sink:
    ref:
      apiVersion: eventing.knative.dev/v1
      kind: Broker
      name: bus
`
	files["pingsource-often.yaml"] = `apiVersion: sources.knative.dev/v1
kind: PingSource
metadata:
  name: often
  namespace: ` + ns + `
spec:
  schedule: "* * * * * *" # seconds field: every second
  data: often
  sink:
    ref:
      apiVersion: eventing.knative.dev/v1
      kind: Broker
      name: bus
`
	files["t.yaml"] = trigger("sweep", "sweeper", map[string]string{
		"type": "dev.knative.sources.ping", "source": "/apis/v1/namespaces/" + ns + "/pingsources/tick",
	}, "")
	files["t2.yaml"] = trigger("often", "often", map[string]string{
		"type": "dev.knative.sources.ping", "source": "/apis/v1/namespaces/" + ns + "/pingsources/often",
	}, "")
	e := newEnv(t, files)
	s, often := newSubscriber(t, ok), newSubscriber(t, ok)
	e.subs["sweeper"], e.subs["often"] = s, often
	si, _ := e.start(e.config())

	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := si.FirePing(ctx, "tick"); err != nil {
		t.Fatalf("FirePing: %v", err)
	}
	got := s.next(t)
	if got.ev.Type() != standin.PingType || got.ev.Source() != "/apis/v1/namespaces/"+ns+"/pingsources/tick" {
		t.Fatalf("got %s from %s", got.ev.Type(), got.ev.Source())
	}
	if string(got.ev.Data()) != `{"job":"sweep"}` || got.ev.DataContentType() != "application/json" {
		t.Fatalf("data %q (%s)", got.ev.Data(), got.ev.DataContentType())
	}
	if err := si.FirePing(ctx, "nope"); err == nil {
		t.Fatal("FirePing of an unknown PingSource succeeded")
	}
	// The cron schedule fires by itself too.
	if got := often.next(t); string(got.ev.Data()) != "often" {
		t.Fatalf("scheduled ping data %q", got.ev.Data())
	}
	if s.next0(t) != "" {
		t.Fatal("the other PingSource's tick reached the sweeper")
	}
}

func TestNonCloudEventRecordIsWrapped(t *testing.T) {
	files := baseManifests()
	files["t.yaml"] = trigger("raw", "raw", map[string]string{"type": standin.KafkaEventType}, "")
	e := newEnv(t, files)
	s := newSubscriber(t, ok)
	e.subs["raw"] = s
	e.start(e.config())
	r := &kgo.Record{Topic: events.TopicOrders, Key: []byte("k9"), Value: []byte(`{"legacy":true}`),
		Headers: []kgo.RecordHeader{{Key: "X-Trace", Value: []byte("abc")}}}
	e.produceRecord(r)
	got := s.next(t).ev
	if got.Type() != standin.KafkaEventType {
		t.Fatalf("type %s", got.Type())
	}
	if want := "/apis/v1/namespaces/" + ns + "/kafkasources/topics#" + events.TopicOrders; got.Source() != want {
		t.Errorf("source %s, want %s", got.Source(), want)
	}
	if want := fmt.Sprintf("partition:%d#%d", r.Partition, r.Offset); got.Subject() != want {
		t.Errorf("subject %s, want %s", got.Subject(), want)
	}
	if string(got.Data()) != `{"legacy":true}` {
		t.Errorf("data %s", got.Data())
	}
	if k := fmt.Sprint(got.Extensions()["key"]); k != "k9" {
		t.Errorf("key extension %q", k)
	}
	if h := fmt.Sprint(got.Extensions()["kafkaheaderxtrace"]); h != "abc" {
		t.Errorf("header extension %q", h)
	}
}

func TestReplyIsPublished(t *testing.T) {
	files := baseManifests()
	files["t1.yaml"] = trigger("start", "starter", map[string]string{"type": events.TypeCommandCoffee}, "")
	files["t2.yaml"] = trigger("announce", "announcer", map[string]string{"type": events.TypeRunCreated}, "")
	e := newEnv(t, files)
	replyEv := newEvent(events.TypeRunCreated, events.RunCreated{RunID: "run-42", ChannelID: "C1"})
	replyEv.SetExtension(kafka.ExtPartitionKey, "run-42")
	starter := newSubscriber(t, func(int64, event.Event) reply {
		return reply{status: http.StatusAccepted, event: &replyEv}
	})
	announcer := newSubscriber(t, ok)
	e.subs["starter"], e.subs["announcer"] = starter, announcer
	e.start(e.config())

	cmd := newEvent(events.TypeCommandCoffee, events.SlashCommand{Command: "/coffee", ChannelID: "C1"})
	e.produce(events.TopicSlackEvents, "C1", cmd)
	if got := starter.next(t); got.ev.ID() != cmd.ID() {
		t.Fatalf("starter got %s", got.ev.ID())
	}
	got := announcer.next(t)
	if got.ev.ID() != replyEv.ID() || string(got.ev.Data()) != string(replyEv.Data()) {
		t.Fatalf("announcer got %s %s, want the reply %s", got.ev.ID(), got.ev.Data(), replyEv.ID())
	}
	recs := e.cluster.Consume(t, events.TopicOrders, 1, wait)
	if len(recs) != 1 || string(recs[0].Key) != "run-42" || header(recs[0], "ce_id") != replyEv.ID() {
		t.Fatalf("reply record on %s: %d records", events.TopicOrders, len(recs))
	}
}

func TestRealManifests(t *testing.T) {
	m, err := standin.Load("..")
	if err != nil {
		t.Fatalf("Load(eventing/): %v", err)
	}
	routes, warns := m.Routes()
	if len(warns) > 0 {
		t.Fatalf("warnings: %v", warns)
	}
	want := map[string]struct{ service, source, group string }{
		"run-start":       {"run-start", "KafkaSource/coffeebuddy-topics", "coffeebuddy-source.run-start"},
		"run-announce":    {"run-announce", "KafkaSource/coffeebuddy-topics", "coffeebuddy-source.run-announce"},
		"outbox-sweep":    {"outbox-sweep", "PingSource/outbox-sweep-tick", ""},
		"audit-retention": {"audit-retention", "PingSource/audit-retention-tick", ""},
	}
	found := map[string]bool{}
	for _, r := range routes {
		w, ok := want[r.Name]
		if !ok || r.Source != w.source {
			continue
		}
		found[r.Name] = true
		if r.Subscriber.Ref == nil || r.Subscriber.Ref.Kind != "Service" || r.Subscriber.Ref.Name != w.service {
			t.Errorf("%s: subscriber %s, want Service %s", r.Name, r.Subscriber, w.service)
		}
		if r.ConsumerGroup != w.group {
			t.Errorf("%s: consumer group %q, want %q", r.Name, r.ConsumerGroup, w.group)
		}
		if r.Namespace != "coffeebuddy" {
			t.Errorf("%s: namespace %s", r.Name, r.Namespace)
		}
	}
	for name := range want {
		if !found[name] {
			t.Errorf("trigger %s does not resolve to a route", name)
		}
	}
	// The routed types are the catalog's.
	for _, tr := range m.Triggers {
		typ := tr.Filter()["type"]
		if typ == standin.PingType || typ == standin.KafkaEventType {
			continue
		}
		if _, err := events.TopicFor(typ); err != nil {
			t.Errorf("trigger %s filters on %q: %v", tr.Meta.Name, typ, err)
		}
	}
	// Each Trigger states its delivery order: without the annotation the
	// Kafka Broker, and so the stand-in, deliver unordered.
	for _, tr := range m.Triggers {
		if _, ok := tr.Meta.Annotations[standin.DeliveryOrderAnnotation]; !ok {
			t.Errorf("trigger %s (%s) does not set %s", tr.Meta.Name, tr.File, standin.DeliveryOrderAnnotation)
		}
	}
	if len(m.KafkaSinks) != 1 || m.KafkaSinks[0].Spec.Topic != events.TopicDeadLetter {
		t.Errorf("dead-letter KafkaSink topic: %+v", m.KafkaSinks)
	}
	p, err := m.PingSource("outbox-sweep-tick")
	if err != nil || p.Spec.Schedule != "* * * * *" {
		t.Errorf("PingSource: %v %+v", err, p)
	}
	// The seed's "daily at 2am", in UTC (the file says why).
	if p, err := m.PingSource("audit-retention-tick"); err != nil || p.Spec.Schedule != "0 2 * * *" || p.Spec.Timezone != "UTC" {
		t.Errorf("PingSource audit-retention-tick: %v %+v", err, p)
	}
}

func TestLoadErrorsNameTheFile(t *testing.T) {
	tests := map[string]string{
		"malformed.yaml": "apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: {name: x\n",
		"backoff.yaml":   trigger("bad-backoff", "s", nil, "retry: 1\nbackoffDelay: 2s"),
		"policy.yaml":    trigger("bad-policy", "s", nil, "backoffPolicy: fibonacci"),
		"every.yaml":     "apiVersion: sources.knative.dev/v1\nkind: PingSource\nmetadata: {name: p}\nspec:\n  schedule: \"@every 1m\"\n  sink: {uri: 'http://x'}\n",
		"cron.yaml":      "apiVersion: sources.knative.dev/v1\nkind: PingSource\nmetadata: {name: p}\nspec:\n  schedule: \"61 * * * *\"\n  sink: {uri: 'http://x'}\n",
		"nobroker.yaml":  "apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: {name: t}\nspec:\n  subscriber: {uri: 'http://x'}\n",
		"filters.yaml":   "apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: {name: t}\nspec:\n  broker: bus\n  filters: [{exact: {type: x}}]\n  subscriber: {uri: 'http://x'}\n",
		"noname.yaml":    "apiVersion: eventing.knative.dev/v1\nkind: Broker\nmetadata: {}\n",
		"order.yaml":     withDeliveryOrder(trigger("bad-order", "s", nil, ""), "sometimes"),
	}
	for file, body := range tests {
		t.Run(file, func(t *testing.T) {
			dir := t.TempDir()
			writeFiles(t, dir, map[string]string{file: body, "ok.yaml": baseManifests()["broker.yaml"]})
			_, err := standin.Load(dir)
			if err == nil || !strings.Contains(err.Error(), file) {
				t.Fatalf("Load: %v, want an error naming %s", err, file)
			}
		})
	}
	t.Run("unknown kinds are skipped", func(t *testing.T) {
		dir := t.TempDir()
		writeFiles(t, dir, map[string]string{
			"svc.yaml":  "apiVersion: serving.knative.dev/v1\nkind: Service\nmetadata: {name: s}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n---\n# just a comment\n",
			"notes.txt": "not yaml: [",
		})
		m, err := standin.Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		if len(m.Triggers)+len(m.Brokers) != 0 {
			t.Fatalf("unexpected objects: %+v", m)
		}
	})
	t.Run("duplicates", func(t *testing.T) {
		dir := t.TempDir()
		b := baseManifests()["broker.yaml"]
		writeFiles(t, dir, map[string]string{"a.yaml": b, "b.yaml": b})
		if _, err := standin.Load(dir); err == nil || !strings.Contains(err.Error(), "a.yaml") {
			t.Fatalf("Load: %v, want a duplicate error", err)
		}
	})
}

func TestMatches(t *testing.T) {
	ev := newEvent("com.example.a", nil)
	ev.SetSubject("s1")
	ev.SetExtension("team", "T1")
	tests := []struct {
		filter map[string]string
		want   bool
	}{
		{nil, true},
		{map[string]string{}, true},
		{map[string]string{"type": "com.example.a"}, true},
		{map[string]string{"type": "com.example.b"}, false},
		{map[string]string{"type": "com.example.a", "source": "/test"}, true},
		{map[string]string{"type": "com.example.a", "source": "/other"}, false},
		{map[string]string{"team": "T1"}, true},
		{map[string]string{"team": "T2"}, false},
		{map[string]string{"missing": "x"}, false},
		{map[string]string{"team": ""}, true},     // any value, must exist
		{map[string]string{"missing": ""}, false}, // absent
		{map[string]string{"subject": "s1"}, true},
		{map[string]string{"datacontenttype": "application/json"}, true},
	}
	for _, tt := range tests {
		if got := standin.Matches(tt.filter, ev); got != tt.want {
			t.Errorf("Matches(%v) = %v, want %v", tt.filter, got, tt.want)
		}
	}
}
