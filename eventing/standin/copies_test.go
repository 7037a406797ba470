package standin_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/coffeebuddy/coffeebuddy/eventing/standin"
	"github.com/coffeebuddy/coffeebuddy/shared/events"
)

const dupDelivery = "retry: 2\nbackoffPolicy: linear\nbackoffDelay: PT0.01S"

// requests waits for n requests to s and groups them by event id.
func (s *subscriber) requests(t *testing.T, n int) map[string][]received {
	t.Helper()
	byID := map[string][]received{}
	for range n {
		r := s.next(t)
		byID[r.ev.ID()] = append(byID[r.ev.ID()], r)
	}
	return byID
}

// assertCommitted restarts routing with a fresh stand-in (same consumer
// groups, no copies) and checks that the next request s gets is a new
// sentinel: everything before it was committed.
func (e *env) assertCommitted(t *testing.T, stop func(), s *subscriber, typ string) {
	t.Helper()
	stop()
	if n := len(s.got); n > 0 {
		t.Fatalf("%d unexpected extra requests before the restart", n)
	}
	e.start(e.config())
	sentinel := newEvent(typ, map[string]string{"sentinel": "yes"})
	e.produce(events.TopicSlackEvents, "sentinel", sentinel)
	if got := s.next(t); got.ev.ID() != sentinel.ID() {
		t.Fatalf("after restart got %s, want only the new sentinel %s: an offset was not committed", got.ev.ID(), sentinel.ID())
	}
}

func TestCopiesDeliverEveryEventNTimes(t *testing.T) {
	files := baseManifests()
	files["t.yaml"] = trigger("dup", "dup", map[string]string{"type": "test.dup"}, dupDelivery)
	e := newEnv(t, files)
	s := newSubscriber(t, ok)
	e.subs["dup"] = s
	cfg := e.config()
	cfg.Copies = 3
	si, stop := e.start(cfg)

	const count = 6
	want := map[string]event.Event{}
	for i := range count {
		ev := newEvent("test.dup", map[string]int{"i": i})
		want[ev.ID()] = ev
		e.produce(events.TopicSlackEvents, fmt.Sprint("k", i), ev)
	}
	byID := s.requests(t, 3*count)
	for id := range want {
		got := byID[id]
		if len(got) != 3 {
			t.Errorf("event %s delivered %d times, want 3", id, len(got))
			continue
		}
		for _, r := range got {
			if !r.binary || r.ev.String() != got[0].ev.String() {
				t.Errorf("copies of %s differ (binary %v):\n%s\nvs\n%s", id, r.binary, r.ev, got[0].ev)
			}
		}
	}
	if len(byID) != count {
		t.Errorf("requests for %d events, want %d", len(byID), count)
	}
	if n := si.CopiesSent(); n != 2*count {
		t.Errorf("CopiesSent = %d, want %d", n, 2*count)
	}
	e.assertCommitted(t, stop, s, "test.dup")
}

func TestCopiesFailingOriginalIsRetried(t *testing.T) {
	files := baseManifests()
	files["t.yaml"] = trigger("dup", "dup", map[string]string{"type": "test.dup"}, dupDelivery)
	e := newEnv(t, files)
	// The first attempt (original and both copies) fails; the retry succeeds.
	s := newSubscriber(t, func(n int64, _ event.Event) reply {
		if n <= 3 {
			return reply{status: http.StatusInternalServerError}
		}
		return reply{}
	})
	e.subs["dup"] = s
	cfg := e.config()
	cfg.Copies = 3
	si, stop := e.start(cfg)

	ev := newEvent("test.dup", nil)
	e.produce(events.TopicSlackEvents, "k", ev)
	byID := s.requests(t, 6)
	if len(byID[ev.ID()]) != 6 {
		t.Fatalf("requests %v, want 6 of %s (two attempts of three)", byID, ev.ID())
	}
	if n := si.CopiesSent(); n != 4 {
		t.Errorf("CopiesSent = %d, want 4", n)
	}
	e.assertCommitted(t, stop, s, "test.dup")
}

// copyTransport answers copies itself (failing them, or replying with an
// event) and passes originals on to the real subscriber.
type copyTransport struct {
	reply event.Event
}

func (c copyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if !standin.IsCopy(r) {
		return http.DefaultTransport.RoundTrip(r)
	}
	ev, err := binding.ToEvent(r.Context(), cehttp.NewMessageFromHttpRequest(r))
	if err != nil {
		return nil, err
	}
	w := httptest.NewRecorder()
	switch ev.Type() {
	case "test.copyfail":
		w.WriteHeader(http.StatusServiceUnavailable) // retryable, were it the original
	case "test.copyreply":
		if err := cehttp.WriteResponseWriter(r.Context(), binding.ToMessage(&c.reply), http.StatusOK, w); err != nil {
			return nil, err
		}
	}
	return w.Result(), nil
}

func TestCopiesDoNotDecide(t *testing.T) {
	files := baseManifests()
	// Ordered: the test expects fail's delivery before rep's.
	files["t.yaml"] = withDeliveryOrder(trigger("dup", "dup", nil, dupDelivery), standin.Ordered)
	e := newEnv(t, files)
	s := newSubscriber(t, ok)
	e.subs["dup"] = s
	replyEv := newEvent(events.TypeRunCreated, events.RunCreated{RunID: "run-copy"})
	cfg := e.config()
	cfg.Copies = 3
	cfg.HTTPClient = &http.Client{Transport: copyTransport{reply: replyEv}}
	si, stop := e.start(cfg)

	fail, rep := newEvent("test.copyfail", nil), newEvent("test.copyreply", nil)
	e.produce(events.TopicSlackEvents, "k", fail)
	e.produce(events.TopicSlackEvents, "k", rep)
	// Only originals reach the subscriber: one each, no retry although
	// every copy of fail got a 503.
	if got := s.next(t).ev.ID(); got != fail.ID() {
		t.Fatalf("first request %s, want %s", got, fail.ID())
	}
	if got := s.next(t).ev.ID(); got != rep.ID() {
		t.Fatalf("second request %s, want %s (the failing copies caused a retry?)", got, rep.ID())
	}
	if n := si.CopiesSent(); n != 4 {
		t.Errorf("CopiesSent = %d, want 4", n)
	}
	e.assertCommitted(t, stop, s, "test.copyfail")

	// The copies' reply events were dropped: a sentinel is the first record
	// on the reply's topic.
	sentinel := newEvent("test.sentinel", nil)
	e.produce(events.TopicOrders, "", sentinel)
	recs := e.cluster.Consume(t, events.TopicOrders, 1, wait)
	if len(recs) != 1 || header(recs[0], "ce_id") != sentinel.ID() {
		t.Fatalf("%s holds a record before the sentinel: a copy's reply was published", events.TopicOrders)
	}
}

func TestSetCopiesAppliesToPings(t *testing.T) {
	files := baseManifests()
	files["pingsource.yaml"] = `apiVersion: sources.knative.dev/v1
kind: PingSource
metadata:
  name: tick
  namespace: ` + ns + `
spec:
  schedule: "0 0 1 1 *"
  data: tick
  sink:
    ref:
      apiVersion: eventing.knative.dev/v1
      kind: Broker
      name: bus
`
	files["t.yaml"] = trigger("sweep", "sweeper", map[string]string{"type": standin.PingType}, dupDelivery)
	e := newEnv(t, files)
	s := newSubscriber(t, ok)
	e.subs["sweeper"] = s
	si, _ := e.start(e.config())
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()

	// FirePing returns once the delivery, copies included, is done.
	for _, copies := range []int{0, 3, 1, 2} {
		si.SetCopies(copies)
		before := si.CopiesSent()
		if err := si.FirePing(ctx, "tick"); err != nil {
			t.Fatal(err)
		}
		want := max(copies, 1)
		if n := len(s.got); n != want {
			t.Fatalf("copies %d: %d requests, want %d", copies, n, want)
		}
		byID := s.requests(t, want)
		if len(byID) != 1 {
			t.Fatalf("copies %d: ids %v, want one", copies, byID)
		}
		if got := si.CopiesSent() - before; got != int64(want-1) {
			t.Errorf("copies %d: CopiesSent grew by %d, want %d", copies, got, want-1)
		}
	}
}
