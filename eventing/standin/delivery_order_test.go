package standin_test

// Ordered and unordered delivery (the Trigger's
// kafka.eventing.knative.dev/delivery.order annotation): concurrency within
// one partition, a slow record not holding up later ones, and commits that
// never pass a record not yet done, across a restart.

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/coffeebuddy/coffeebuddy/eventing/standin"
	"github.com/coffeebuddy/coffeebuddy/shared/events"
	"github.com/coffeebuddy/coffeebuddy/shared/kafka"
	"github.com/twmb/franz-go/pkg/kadm"
)

// waitUntil polls cond until it holds, failing the test after wait.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			t.Fatalf("%s: not within %v", what, wait)
		case <-tick.C:
		}
	}
}

// verdict is what a gated subscriber does with a request.
type verdict int

const (
	pass verdict = iota // answer 200 at once
	hold                // answer 200 once the test releases it
	fail                // answer 500 (retryable)
)

// gated is a subscriber for events whose subject is their sequence number:
// it counts requests in flight (and their peak), arrivals and 200 answers
// per number, and holds or fails requests as decide says.
type gated struct {
	srv     *httptest.Server
	decide  func(seq, attempt int) verdict
	release chan struct{} // a held request waits for one value
	open    chan struct{} // closed: every held request goes through
	closed  chan struct{} // test over: held requests give up
	once    sync.Once
	opened  sync.Once

	mu       sync.Mutex
	inFlight int
	peak     int
	arrivals []int       // sequence numbers, every attempt, in arrival order
	attempts map[int]int // per sequence number
	ok       map[int]int // 200 answers per sequence number
}

func newGated(t *testing.T, decide func(seq, attempt int) verdict) *gated {
	t.Helper()
	g := &gated{
		decide: decide, release: make(chan struct{}), open: make(chan struct{}), closed: make(chan struct{}),
		attempts: map[int]int{}, ok: map[int]int{},
	}
	g.srv = httptest.NewServer(http.HandlerFunc(g.serve))
	t.Cleanup(g.srv.Close)
	t.Cleanup(g.free)
	return g
}

// free makes held requests give up (503). Tests defer it, so a failing test
// does not leave the stand-in's stop (a cleanup) waiting on a held request.
func (g *gated) free() { g.once.Do(func() { close(g.closed) }) }

// openAll lets every held request, and any later one, through.
func (g *gated) openAll() { g.opened.Do(func() { close(g.open) }) }

func (g *gated) serve(w http.ResponseWriter, r *http.Request) {
	ev, err := binding.ToEvent(r.Context(), cehttp.NewMessageFromHttpRequest(r))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	seq, err := strconv.Atoi(ev.Subject())
	if err != nil {
		http.Error(w, "subject is not a sequence number", http.StatusBadRequest)
		return
	}
	g.mu.Lock()
	g.inFlight++
	g.peak = max(g.peak, g.inFlight)
	g.arrivals = append(g.arrivals, seq)
	g.attempts[seq]++
	v := g.decide(seq, g.attempts[seq])
	g.mu.Unlock()

	status := http.StatusOK
	switch v {
	case hold:
		select {
		case <-g.release:
		case <-g.open:
		case <-g.closed:
			status = http.StatusServiceUnavailable
		}
	case fail:
		status = http.StatusInternalServerError
	}
	g.mu.Lock()
	g.inFlight--
	if status == http.StatusOK {
		g.ok[seq]++
	}
	g.mu.Unlock()
	w.WriteHeader(status)
}

func (g *gated) read(f func(g *gated) bool) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return f(g)
}

// produceSeq produces events numbered from..to-1 (the number is the
// subject) with one key, so all go to one partition, which it returns; it
// records each number's offset in offsets.
func (e *env) produceSeq(key string, from, to int, offsets map[int]int64) (partition int32) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	for i := from; i < to; i++ {
		ev := newEvent("test.seq", map[string]int{"i": i})
		ev.SetSubject(strconv.Itoa(i))
		r, err := kafka.Record(events.TopicOrders, key, ev)
		if err != nil {
			e.t.Fatal(err)
		}
		res, err := e.prod.ProduceSync(ctx, r).First()
		if err != nil {
			e.t.Fatalf("produce %d: %v", i, err)
		}
		offsets[i], partition = res.Offset, res.Partition
	}
	return partition
}

// committed is the group's committed offset on topic/partition (-1: none).
func (e *env) committed(group, topic string, partition int32) int64 {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	resp, err := kadm.NewClient(e.prod).FetchOffsets(ctx, group)
	if err != nil {
		e.t.Fatalf("fetch offsets of %s: %v", group, err)
	}
	if o, ok := resp.Lookup(topic, partition); ok {
		return o.At
	}
	return -1
}

// settledSet records which offsets an unordered consumer has settled.
type settledSet struct {
	mu      sync.Mutex
	offsets map[int64]bool
}

func (s *settledSet) hook(_ string, _ int32, offset int64) {
	s.mu.Lock()
	s.offsets[offset] = true
	s.mu.Unlock()
}

func (s *settledSet) all(offsets ...int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, o := range offsets {
		if !s.offsets[o] {
			return false
		}
	}
	return true
}

func TestDeliveryOrderAnnotation(t *testing.T) {
	tests := []struct {
		name    string
		order   *string // nil: no annotation
		want    standin.DeliveryOrder
		wantErr bool
	}{
		{name: "absent is unordered, Knative's default", want: standin.Unordered},
		{name: "ordered", order: ptr("ordered"), want: standin.Ordered},
		{name: "unordered", order: ptr("unordered"), want: standin.Unordered},
		{name: "case-insensitive, as the Kafka Broker reads it", order: ptr("Ordered"), want: standin.Ordered},
		{name: "unknown value", order: ptr("sometimes"), wantErr: true},
		{name: "empty value", order: ptr(`""`), wantErr: true},
		{name: "padded value", order: ptr(`" ordered"`), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := baseManifests()
			doc := trigger("t", "s", nil, "")
			if tt.order != nil {
				doc = withDeliveryOrder(doc, standin.DeliveryOrder(*tt.order))
			}
			files["trigger-t.yaml"] = doc
			dir := t.TempDir()
			writeFiles(t, dir, files)
			m, err := standin.Load(dir)
			if tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), "trigger-t.yaml") || !strings.Contains(err.Error(), standin.DeliveryOrderAnnotation) {
					t.Fatalf("Load: %v, want an error naming trigger-t.yaml and %s", err, standin.DeliveryOrderAnnotation)
				}
				return
			}
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			routes, _ := m.Routes()
			if len(routes) != 1 || routes[0].DeliveryOrder != tt.want {
				t.Fatalf("routes %+v, want one with delivery order %s", routes, tt.want)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// TestPartitionDeliveryConcurrency: the subscriber holds every request
// until the test releases it, one at a time, each time once the stand-in
// has as many in flight as it may. Ordered delivery has one in flight, in
// offset order; unordered has up to its bound of one partition's records.
func TestPartitionDeliveryConcurrency(t *testing.T) {
	tests := []struct {
		name  string
		order standin.DeliveryOrder // "": no annotation
		limit int                   // Config.UnorderedMaxInFlight (0: default)
		want  int                   // in flight at once
	}{
		{name: "ordered: one at a time", order: standin.Ordered, want: 1},
		{name: "ordered ignores the unordered bound", order: standin.Ordered, limit: 4, want: 1},
		{name: "unordered: default bound", order: standin.Unordered, want: standin.DefaultUnorderedMaxInFlight},
		{name: "no annotation is unordered: configured bound", limit: 4, want: 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := baseManifests()
			doc := trigger("conc", "conc", nil, "retry: 2\nbackoffPolicy: linear\nbackoffDelay: PT0.01S")
			if tt.order != "" {
				doc = withDeliveryOrder(doc, tt.order)
			}
			files["t.yaml"] = doc
			e := newEnv(t, files)
			sub := newGated(t, func(int, int) verdict { return hold })
			defer sub.free()
			cfg := e.config()
			cfg.UnorderedMaxInFlight = tt.limit
			cfg.Resolve = func(string, string) (string, error) { return sub.srv.URL + "/", nil }
			e.start(cfg)

			n := tt.want + 8
			e.produceSeq("one-partition", 0, n, map[int]int64{})
			for released := 0; released < n; released++ {
				expect := min(tt.want, n-released)
				// At least: more is reported below, as the peak.
				waitUntil(t, fmt.Sprintf("%d requests in flight (%d of %d released)", expect, released, n), func() bool {
					return sub.read(func(g *gated) bool { return g.inFlight >= expect })
				})
				sub.release <- struct{}{}
			}
			waitUntil(t, "every event answered", func() bool {
				return sub.read(func(g *gated) bool { return len(g.ok) == n })
			})
			sub.read(func(g *gated) bool {
				if g.peak != tt.want {
					t.Errorf("at most %d requests were in flight at once, want %d", g.peak, tt.want)
				}
				if len(g.arrivals) != n {
					t.Errorf("%d requests for %d events", len(g.arrivals), n)
				}
				if tt.want == 1 && !slices.IsSorted(g.arrivals) {
					t.Errorf("ordered delivery out of offset order: %v", g.arrivals)
				}
				return true
			})
		})
	}
}

// TestUnorderedSlowRecordDoesNotHoldUpLaterOnes: one record of a partition
// is slow (the subscriber holds it, or keeps failing it so it is retried);
// every later record of that partition is delivered meanwhile, but the
// committed offset stays at the slow record until it is done.
func TestUnorderedSlowRecordDoesNotHoldUpLaterOnes(t *testing.T) {
	const n, slow = 10, 3
	for _, slowly := range []verdict{hold, fail} {
		name := map[verdict]string{hold: "held by the subscriber", fail: "retrying"}[slowly]
		t.Run(name, func(t *testing.T) {
			files := baseManifests()
			files["t.yaml"] = withDeliveryOrder(trigger("slow", "slow", nil,
				"retry: 10000\nbackoffPolicy: linear\nbackoffDelay: PT0.01S"), standin.Unordered)
			e := newEnv(t, files)
			var released atomic.Bool
			sub := newGated(t, func(seq, _ int) verdict {
				if seq == slow && !released.Load() {
					return slowly
				}
				return pass
			})
			defer sub.free()
			cfg := e.config()
			cfg.Resolve = func(string, string) (string, error) { return sub.srv.URL + "/", nil }
			settled := &settledSet{offsets: map[int64]bool{}}
			e.startWith(cfg, func(si *standin.StandIn) { standin.SetSettled(si, settled.hook) })

			offsets := map[int]int64{}
			part := e.produceSeq("one-partition", 0, n, offsets)
			var others []int64
			for i := range n {
				if i != slow {
					others = append(others, offsets[i])
				}
			}
			// The slow record is at the subscriber (not yet released, so not
			// done) while every record after it is delivered and settled.
			waitUntil(t, "every record but the slow one settled, the slow one at the subscriber", func() bool {
				return settled.all(others...) && sub.read(func(g *gated) bool { return g.attempts[slow] > 0 })
			})
			sub.read(func(g *gated) bool {
				if g.ok[slow] != 0 {
					t.Fatalf("slow record answered 200 before it was released")
				}
				return true
			})
			const group = "src.slow"
			if got := e.committed(group, events.TopicOrders, part); got != offsets[slow] {
				t.Fatalf("committed offset %d while record %d (offset %d) is not done, want %d", got, slow, offsets[slow], offsets[slow])
			}

			released.Store(true)
			if slowly == hold {
				sub.release <- struct{}{}
			}
			waitUntil(t, "the slow record settled", func() bool { return settled.all(offsets[slow]) })
			if got, want := e.committed(group, events.TopicOrders, part), offsets[n-1]+1; got != want {
				t.Fatalf("committed offset %d once every record is done, want %d", got, want)
			}
		})
	}
}

// TestUnorderedRestartRedeliversOnlyUnfinished: one record keeps failing
// while every other record of its partition is delivered. The committed
// offset stays at the failing record; after a restart (a new stand-in, or
// a hot reload: a new generation rejoining the same consumer group) it and
// the records above it, done but not committable, are delivered again, the
// records below it are not, and nothing is lost.
func TestUnorderedRestartRedeliversOnlyUnfinished(t *testing.T) {
	const n, stuck = 10, 3
	for _, restart := range []string{"new stand-in", "hot reload"} {
		t.Run(restart, func(t *testing.T) {
			files := baseManifests()
			doc := withDeliveryOrder(trigger("redo", "redo", nil,
				"retry: 10000\nbackoffPolicy: linear\nbackoffDelay: PT0.01S"), standin.Unordered)
			files["t.yaml"] = doc
			e := newEnv(t, files)
			var healed atomic.Bool
			sub := newGated(t, func(seq, _ int) verdict {
				if seq == stuck && !healed.Load() {
					return fail
				}
				return pass
			})
			reloaded := make(chan error, 10)
			cfg := e.config()
			cfg.Resolve = func(string, string) (string, error) { return sub.srv.URL + "/", nil }
			cfg.OnReload = func(err error) { reloaded <- err }
			settled := &settledSet{offsets: map[int64]bool{}}
			withHook := func(si *standin.StandIn) { standin.SetSettled(si, settled.hook) }
			_, stop := e.startWith(cfg, withHook)

			offsets := map[int]int64{}
			part := e.produceSeq("one-partition", 0, n, offsets)
			var others []int64
			for i := range n {
				if i != stuck {
					others = append(others, offsets[i])
				}
			}
			waitUntil(t, "every record but the failing one settled", func() bool { return settled.all(others...) })
			const group = "src.redo"
			if got := e.committed(group, events.TopicOrders, part); got != offsets[stuck] {
				t.Fatalf("committed offset %d while record %d (offset %d) is retrying, want %d", got, stuck, offsets[stuck], offsets[stuck])
			}

			switch restart {
			case "new stand-in":
				stop() // abandons the retries of the failing record
				if got := e.committed(group, events.TopicOrders, part); got != offsets[stuck] {
					t.Fatalf("committed offset %d after stopping, want %d (the unfinished record)", got, offsets[stuck])
				}
				healed.Store(true)
				_, stop = e.startWith(cfg, withHook)
			case "hot reload":
				writeFiles(t, e.dir, map[string]string{"t.yaml": "# edited: a new generation\n" + doc})
				select {
				case err := <-reloaded:
					if err != nil {
						t.Fatalf("reload: %v", err)
					}
				case <-time.After(wait):
					t.Fatal("no reload after editing the Trigger")
				}
				// The old generation has stopped; the new one cannot commit
				// past the record, which still fails.
				if got := e.committed(group, events.TopicOrders, part); got != offsets[stuck] {
					t.Fatalf("committed offset %d after the reload, want %d (the unfinished record)", got, offsets[stuck])
				}
				healed.Store(true)
			}

			// Everything from the failing record on is delivered again;
			// a sentinel produced after them comes through too.
			want := map[int]int{}
			for i := range n {
				want[i] = 1
				if i > stuck {
					want[i] = 2
				}
			}
			want[n] = 1 // the sentinel
			waitUntil(t, "the unfinished record and those above it delivered again", func() bool {
				return sub.read(func(g *gated) bool {
					for i := stuck; i < n; i++ {
						if g.ok[i] < want[i] {
							return false
						}
					}
					return true
				})
			})
			e.produceSeq("one-partition", n, n+1, offsets)
			waitUntil(t, "the sentinel settled", func() bool { return settled.all(offsets[n]) })
			// Stopping waits for every delivery started: had a record
			// below the failing one been delivered again, it would have
			// been started before the sentinel and be counted now.
			stop()
			sub.read(func(g *gated) bool {
				for i := 0; i <= n; i++ {
					if g.ok[i] != want[i] {
						t.Errorf("record %d answered 200 %d times, want %d (all: %v)", i, g.ok[i], want[i], g.ok)
					}
				}
				return true
			})
			if got, want := e.committed(group, events.TopicOrders, part), offsets[n]+1; got != want {
				t.Fatalf("committed offset %d at the end, want %d: every record done", got, want)
			}
		})
	}
}

// TestBacklogPausesAndResumes: one partition's subscriber holds its
// records (ordered: the first one blocks the rest; unordered: the window
// fills up), while records keep arriving on it, each in a fetch of its own,
// more than the worker's backlog takes before the partition is paused.
// Records of the other partitions are delivered all along; once released,
// the held partition is resumed and catches up, losing nothing.
func TestBacklogPausesAndResumes(t *testing.T) {
	const rounds = 12 // > the pause threshold (4 batches) + the window
	tests := []struct {
		order standin.DeliveryOrder
		limit int
	}{
		{order: standin.Ordered},
		{order: standin.Unordered, limit: 2},
	}
	for _, tt := range tests {
		t.Run(string(tt.order), func(t *testing.T) {
			files := baseManifests()
			files["t.yaml"] = withDeliveryOrder(trigger("backlog", "backlog", nil,
				"retry: 2\nbackoffPolicy: linear\nbackoffDelay: PT0.01S"), tt.order)
			e := newEnv(t, files)
			const stuckPart, other = 0, 1000 // sequence numbers ≥ other: other partitions
			sub := newGated(t, func(seq, _ int) verdict {
				if seq < other {
					return hold
				}
				return pass
			})
			defer sub.free()
			cfg := e.config()
			cfg.UnorderedMaxInFlight = tt.limit
			cfg.Resolve = func(string, string) (string, error) { return sub.srv.URL + "/", nil }
			e.start(cfg)

			produce := func(key string, seq int) {
				ev := newEvent("test.seq", map[string]int{"i": seq})
				ev.SetSubject(strconv.Itoa(seq))
				e.produce(events.TopicOrders, key, ev)
			}
			stuck := keysOn(events.TopicOrders, stuckPart, rounds, "stuck")
			others := [2][]string{keysOn(events.TopicOrders, 1, rounds, "other"), keysOn(events.TopicOrders, 2, rounds, "other")}
			for i := range rounds {
				produce(stuck[i], i)
				// Delivered while the stuck partition holds: the poll loop
				// went round, so the next stuck record is a fetch of its own.
				produce(others[i%2][i], other+i)
				waitUntil(t, fmt.Sprintf("round %d: another partition delivering", i), func() bool {
					return sub.read(func(g *gated) bool { return g.ok[other+i] == 1 })
				})
			}
			sub.read(func(g *gated) bool {
				for i := range rounds {
					if g.ok[i] != 0 {
						t.Fatalf("held record %d answered before release", i)
					}
				}
				return true
			})
			sub.openAll()
			waitUntil(t, "the held partition catching up", func() bool {
				return sub.read(func(g *gated) bool {
					for i := range rounds {
						if g.ok[i] != 1 {
							return false
						}
					}
					return true
				})
			})
		})
	}
}
