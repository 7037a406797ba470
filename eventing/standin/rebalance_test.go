package standin_test

// Consumer group changes (issue 4, item 9): adding or removing a stand-in
// instance mid-stream moves partitions between the members of a Trigger's
// consumer group; records may be delivered again across the handoff, but no
// effect is lost or applied twice, and per key the effects stay in order.
//
// The subscriber applies each event's effect as CoffeeBuddy functions do:
// in a PostgreSQL transaction with the processed-events dedup (store.Once).

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
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
	"github.com/coffeebuddy/coffeebuddy/shared/postgres/pgtest"
	"github.com/coffeebuddy/coffeebuddy/shared/store"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const (
	rebalanceType     = "test.rebalance"
	rebalanceConsumer = "rebalance-effects"
	// rebalanceEvents is spread over coffee.orders' 3 partitions.
	rebalanceEvents = 600
	// hotKeys keys get several events each (every hotEvery-th event), to
	// check per-key order across the handoffs; every other event has a
	// key of its own.
	hotKeys  = 10
	hotEvery = 6
	// window bounds produced-but-not-yet-applied events, so the stream is
	// still flowing when instances join and leave.
	window = 45
	// While B joins, the producer trickles one event per trickleEvery (a
	// steady stream, so A still has work when the group rebalances, which
	// takes up to franz-go's 3s heartbeat interval) and never goes past
	// trickleCap, so B and then phase 3 still have events to deliver.
	trickleEvery = 25 * time.Millisecond
	trickleCap   = rebalanceEvents * 3 / 4
	// rebalanceWait bounds each phase of a rebalance test.
	rebalanceWait = 15 * time.Second
)

// Test phases, as the subscriber sees them.
const (
	phaseAOnly = iota // only instance A runs
	phaseBoth         // B started (rebalance: partitions move to B)
	phaseBOnly        // A stopped (rebalance: its partitions move to B)
	phaseCount
)

var phaseNames = [phaseCount]string{"A only", "A+B", "B only"}

// effectPayload is the data of a test event: its key and its position
// among that key's events.
type effectPayload struct {
	Key string `json:"key"`
	Seq int    `json:"seq"`
}

// faultFunc decides, for the n-th request (from 1) to a subscriber
// instance in phase, for an event of key, whether to answer 500 before
// applying the effect or after it (the answer is lost, as in a crash after
// commit), and how long the work takes.
type faultFunc func(n int64, phase int32, key string) (failBefore, failAfter bool, work time.Duration)

// effects is the subscriber side: the database, counters the test waits
// on, and per-instance HTTP endpoints sharing one handler.
type effects struct {
	t     *testing.T
	db    *pgxpool.Pool
	store *store.Store
	phase atomic.Int32

	applied  atomic.Int64  // effects committed (first deliveries)
	progress chan struct{} // poked after every applied effect

	mu         sync.Mutex
	deliveries map[string]int // ce_id → requests
	appliedIDs map[string]bool
	// deliveredBy records which instances had each event: both means it
	// was redelivered across a handoff.
	deliveredBy map[string]map[string]bool
	failedBy    map[string]map[string]bool // instance → ce_ids answered 500
	duplicates  int                        // requests store.Once skipped
	failed      int                        // 500s answered (injected or not)
	// byPhase[instance][phase] counts effects applied; parts likewise
	// records the partitions they came from.
	byPhase map[string]*[phaseCount]int
	parts   map[string]*[phaseCount]map[int32]bool
	partOf  map[string]int32 // ce_id → partition it was produced to
}

func newEffects(t *testing.T) *effects {
	t.Helper()
	db := pgtest.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), rebalanceWait)
	defer cancel()
	// No unique constraint on ce_id: a duplicated effect must be visible.
	if _, err := db.Pool.Exec(ctx, `CREATE TABLE rebalance_effects (
		id       bigserial PRIMARY KEY,
		ce_id    text   NOT NULL,
		key      text   NOT NULL,
		seq      int    NOT NULL,
		prev     int    NOT NULL, -- effects of key already applied
		instance text   NOT NULL
	)`); err != nil {
		t.Fatal(err)
	}
	return &effects{
		t: t, db: db.Pool, store: store.New(db.Pool),
		progress:    make(chan struct{}, 1),
		deliveries:  map[string]int{},
		appliedIDs:  map[string]bool{},
		deliveredBy: map[string]map[string]bool{},
		failedBy:    map[string]map[string]bool{},
		byPhase:     map[string]*[phaseCount]int{},
		parts:       map[string]*[phaseCount]map[int32]bool{},
		partOf:      map[string]int32{},
	}
}

// server starts the subscriber instance a stand-in instance delivers to.
func (fx *effects) server(instance string, fault faultFunc) *httptest.Server {
	var n atomic.Int64
	fx.mu.Lock()
	fx.byPhase[instance] = &[phaseCount]int{}
	fx.parts[instance] = &[phaseCount]map[int32]bool{{}, {}, {}}
	fx.failedBy[instance] = map[string]bool{}
	fx.mu.Unlock()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ev, err := binding.ToEvent(r.Context(), cehttp.NewMessageFromHttpRequest(r))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var p effectPayload
		if err := ev.DataAs(&p); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		phase := fx.phase.Load()
		var failBefore, failAfter bool
		var work time.Duration
		if fault != nil {
			failBefore, failAfter, work = fault(n.Add(1), phase, p.Key)
		}
		fx.mu.Lock()
		fx.deliveries[ev.ID()]++
		if fx.deliveredBy[ev.ID()] == nil {
			fx.deliveredBy[ev.ID()] = map[string]bool{}
		}
		fx.deliveredBy[ev.ID()][instance] = true
		fx.mu.Unlock()
		if work > 0 {
			time.Sleep(work) // simulated work, not synchronisation
		}
		if failBefore {
			fx.fail(w, instance, ev.ID(), "injected failure before the effect")
			return
		}
		dup, err := fx.store.Once(r.Context(), rebalanceConsumer, ev.ID(), func(tx pgx.Tx) error {
			var prev int
			if err := tx.QueryRow(r.Context(), `SELECT count(*) FROM rebalance_effects WHERE key = $1`, p.Key).Scan(&prev); err != nil {
				return err
			}
			_, err := tx.Exec(r.Context(),
				`INSERT INTO rebalance_effects (ce_id, key, seq, prev, instance) VALUES ($1, $2, $3, $4, $5)`,
				ev.ID(), p.Key, p.Seq, prev, instance)
			return err
		})
		if err != nil {
			fx.fail(w, instance, ev.ID(), err.Error())
			return
		}
		fx.mu.Lock()
		if dup {
			fx.duplicates++
		} else {
			fx.byPhase[instance][phase]++
			fx.appliedIDs[ev.ID()] = true
			if part, ok := fx.partOf[ev.ID()]; ok {
				fx.parts[instance][phase][part] = true
			}
		}
		fx.mu.Unlock()
		if !dup {
			fx.applied.Add(1)
			select {
			case fx.progress <- struct{}{}:
			default:
			}
		}
		if failAfter {
			fx.fail(w, instance, ev.ID(), "injected failure after the effect (answer lost)")
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	fx.t.Cleanup(srv.Close)
	return srv
}

func (fx *effects) fail(w http.ResponseWriter, instance, ceID, msg string) {
	fx.mu.Lock()
	fx.failed++
	fx.failedBy[instance][ceID] = true
	fx.mu.Unlock()
	http.Error(w, msg, http.StatusInternalServerError)
}

// waitFor polls cond until it holds or rebalanceWait passes.
func (fx *effects) waitFor(what string, cond func() bool) {
	fx.t.Helper()
	deadline := time.NewTimer(rebalanceWait)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			fx.t.Fatalf("%s: not within %v (applied %d of %d; %s)", what, rebalanceWait, fx.applied.Load(), rebalanceEvents, fx.summary())
		case <-tick.C:
		}
	}
}

func (fx *effects) appliedBy(instance string, phase int) int {
	fx.mu.Lock()
	defer fx.mu.Unlock()
	return fx.byPhase[instance][phase]
}

// failingEvents is how many distinct events instance answered 500.
func (fx *effects) failingEvents(instance string) int {
	fx.mu.Lock()
	defer fx.mu.Unlock()
	return len(fx.failedBy[instance])
}

func (fx *effects) summary() string {
	fx.mu.Lock()
	defer fx.mu.Unlock()
	var b strings.Builder
	b.WriteString("effects by phase")
	for _, in := range []string{"A", "B"} {
		if n := fx.byPhase[in]; n != nil {
			fmt.Fprintf(&b, " %s=%v", in, *n)
		}
	}
	return b.String()
}

// rebalanceStream builds the test's events: hot keys get every hotEvery-th
// event, in order; the rest have keys of their own.
func rebalanceStream() (evs []event.Event, keys []string) {
	hotSeq := make([]int, hotKeys)
	for i := range rebalanceEvents {
		var p effectPayload
		if i%hotEvery == 0 {
			h := (i / hotEvery) % hotKeys
			p = effectPayload{Key: fmt.Sprintf("hot-%02d", h), Seq: hotSeq[h]}
			hotSeq[h]++
		} else {
			p = effectPayload{Key: fmt.Sprintf("solo-%03d", i)}
		}
		ev := newEvent(rebalanceType, p)
		ev.SetSubject(p.Key)
		evs = append(evs, ev)
		keys = append(keys, p.Key)
	}
	return evs, keys
}

// joining reports whether B has started but not yet applied an effect
// (it may not own a partition yet).
func (fx *effects) joining() bool {
	return fx.phase.Load() == phaseBoth && fx.appliedBy("B", phaseBoth) == 0
}

// mayProduce reports whether event i may be produced now.
func (fx *effects) mayProduce(i int) bool {
	if int64(i)-fx.applied.Load() >= window {
		return false
	}
	return i < trickleCap || !fx.joining()
}

// produceStream produces the events in order, keeping at most window of
// them ahead of the applied effects (trickling while B joins), until all
// are produced or ctx ends.
func (fx *effects) produceStream(ctx context.Context, e *env, evs []event.Event, keys []string) <-chan error {
	done := make(chan error, 1)
	go func() {
		defer close(done)
		tick := time.NewTicker(trickleEvery)
		defer tick.Stop()
		for i, ev := range evs {
			for !fx.mayProduce(i) {
				select {
				case <-fx.progress:
				case <-tick.C: // the phase may have changed
				case <-ctx.Done():
					done <- ctx.Err()
					return
				}
			}
			if fx.joining() {
				select {
				case <-tick.C:
				case <-ctx.Done():
					done <- ctx.Err()
					return
				}
			}
			rec, err := kafka.Record(events.TopicOrders, keys[i], ev)
			if err != nil {
				done <- err
				return
			}
			// Known before the record can be delivered: the producer's
			// partitioner is deterministic for keyed records.
			part := kgo.StickyKeyPartitioner(nil).ForTopic(rec.Topic).Partition(rec, 3)
			fx.mu.Lock()
			fx.partOf[ev.ID()] = int32(part)
			fx.mu.Unlock()
			res := e.prod.ProduceSync(ctx, rec)
			if err := res.FirstErr(); err != nil {
				done <- fmt.Errorf("produce %d: %w", i, err)
				return
			}
			if got := res[0].Record.Partition; got != int32(part) {
				done <- fmt.Errorf("produce %d: went to partition %d, expected %d", i, got, part)
				return
			}
		}
	}()
	return done
}

type rebalanceCase struct {
	name string
	// faultA and faultB shape the subscriber instances stand-ins A and B
	// deliver to (nil: fast and healthy).
	faultA, faultB faultFunc
	// beforeStopA, if set, runs just before A is stopped.
	beforeStopA func(fx *effects)
	// handoffRedeliveries: A must leave records delivered but
	// uncommitted, which B then delivers again.
	handoffRedeliveries bool
}

// TestRebalanceExactlyOnceEffects: instance A consumes alone; after a third
// of the effects instance B joins the same consumer groups (partitions move
// to B while A keeps delivering); after two thirds A is stopped (its
// partitions move to B); B finishes. Every event has exactly one effect,
// per key in order.
func TestRebalanceExactlyOnceEffects(t *testing.T) {
	runRebalance(t, rebalanceCase{name: "healthy"})
}

// TestRebalanceWithSlowFailingSubscriber is the same handoff while the
// subscriber instances are slow and answer 500 to some deliveries during
// the rebalances, some before applying the effect (retried, applied later)
// and some after (the effect stands; the retry must not apply it again).
func TestRebalanceWithSlowFailingSubscriber(t *testing.T) {
	runRebalance(t, rebalanceCase{
		name: "slow-failing",
		faultA: func(n int64, phase int32, _ string) (bool, bool, time.Duration) {
			if phase == phaseAOnly {
				return false, false, 0
			}
			return n%4 == 0, n%7 == 0, 3 * time.Millisecond
		},
		faultB: func(n int64, phase int32, _ string) (bool, bool, time.Duration) {
			switch phase {
			case phaseBoth:
				return n%5 == 0, n%3 == 0, 2 * time.Millisecond
			default: // taking over A's partitions
				if n%50 < 25 {
					return n%6 == 0, n%4 == 0, 2 * time.Millisecond
				}
				return false, false, 0
			}
		},
	})
}

// TestRebalanceLeaveMidRetry stops A while its deliveries are failing
// after their effect was committed (the answer is lost, as in a crash
// after commit) and A is between retries: those records stay uncommitted,
// so B, taking over the partitions, delivers them again; the effects are
// not applied twice and per-key order holds.
func TestRebalanceLeaveMidRetry(t *testing.T) {
	var aFailing atomic.Bool
	runRebalance(t, rebalanceCase{
		name: "leave-mid-retry",
		faultA: func(int64, int32, string) (bool, bool, time.Duration) {
			return false, aFailing.Load(), 0
		},
		beforeStopA: func(fx *effects) {
			aFailing.Store(true)
			fx.waitFor("an A delivery failing after its effect", func() bool { return fx.failingEvents("A") >= 1 })
		},
		handoffRedeliveries: true,
	})
}

func runRebalance(t *testing.T, tc rebalanceCase) {
	files := baseManifests()
	// Enough retries that an injected failure is never dead-lettered (a
	// dead-lettered event would have no effect and fail the test); ordered,
	// since per-key order is checked.
	files["t.yaml"] = withDeliveryOrder(trigger("effects", "effects", map[string]string{"type": rebalanceType},
		"retry: 40\nbackoffPolicy: linear\nbackoffDelay: PT0.01S"), standin.Ordered)
	e := newEnv(t, files)
	fx := newEffects(t)
	srvA, srvB := fx.server("A", tc.faultA), fx.server("B", tc.faultB)
	cfgFor := func(srv *httptest.Server) func() {
		// Both instances load the same manifests, so they join the same
		// consumer group.
		cfg := e.config()
		cfg.Resolve = func(kind, name string) (string, error) {
			if kind == "Service" && name == "effects" {
				return srv.URL + "/", nil
			}
			return "", fmt.Errorf("no subscriber %s/%s", kind, name)
		}
		_, stop := e.start(cfg)
		return stop
	}

	evs, keys := rebalanceStream()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	started := time.Now()
	stopA := cfgFor(srvA)
	produced := fx.produceStream(ctx, e, evs, keys)

	// Phase 1: A alone.
	fx.waitFor("a third applied by A", func() bool { return fx.applied.Load() >= rebalanceEvents/3 })
	t.Logf("%s: %d applied by A alone after %v", tc.name, fx.applied.Load(), time.Since(started).Round(time.Millisecond))

	// Phase 2: B joins; partitions move to it while A keeps delivering.
	fx.phase.Store(phaseBoth)
	joinAt := time.Now()
	cfgFor(srvB)
	t.Logf("%s: B ready after %v", tc.name, time.Since(joinAt).Round(time.Millisecond))
	fx.waitFor("B applies effects while A runs", func() bool { return fx.appliedBy("B", phaseBoth) > 0 })
	t.Logf("%s: B's first effect %v after it started; %d applied", tc.name, time.Since(joinAt).Round(time.Millisecond), fx.applied.Load())
	fx.waitFor("two thirds applied", func() bool { return fx.applied.Load() >= 2*rebalanceEvents/3 })

	// Phase 3: A leaves; its partitions move to B.
	if tc.beforeStopA != nil {
		tc.beforeStopA(fx)
	}
	leaveAt := time.Now()
	stopA()
	fx.phase.Store(phaseBOnly)
	t.Logf("%s: A stopped in %v; %d applied", tc.name, time.Since(leaveAt).Round(time.Millisecond), fx.applied.Load())
	fx.waitFor("all applied", func() bool { return fx.applied.Load() >= rebalanceEvents })
	select {
	case err := <-produced:
		if err != nil {
			t.Fatalf("producer: %v", err)
		}
	case <-time.After(rebalanceWait):
		t.Fatal("producer did not finish")
	}
	t.Logf("%s: all %d applied after %v in all", tc.name, rebalanceEvents, time.Since(started).Round(time.Millisecond))

	fx.check(evs, keys, tc.handoffRedeliveries)
}

// check asserts exactly one effect per event, per-key order, and that the
// rebalances really moved partitions; it logs the redeliveries.
func (fx *effects) check(evs []event.Event, keys []string, wantHandoff bool) {
	t := fx.t
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), rebalanceWait)
	defer cancel()

	type effectRow struct {
		ceID, key, instance string
		seq, prev           int
	}
	rows, err := fx.db.Query(ctx, `SELECT ce_id, key, seq, prev, instance FROM rebalance_effects ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (effectRow, error) {
		var x effectRow
		return x, r.Scan(&x.ceID, &x.key, &x.seq, &x.prev, &x.instance)
	})
	if err != nil {
		t.Fatal(err)
	}

	// Exactly once: one effect row per produced event, none other.
	perID := map[string]int{}
	for _, r := range got {
		perID[r.ceID]++
	}
	var lost, dup []string
	for _, ev := range evs {
		switch n := perID[ev.ID()]; {
		case n == 0:
			lost = append(lost, ev.ID())
		case n > 1:
			dup = append(dup, fmt.Sprintf("%s×%d", ev.ID(), n))
		}
		delete(perID, ev.ID())
	}
	if len(lost) > 0 {
		t.Errorf("%d of %d events have no effect (lost), e.g. %v", len(lost), len(evs), lost[:min(5, len(lost))])
	}
	if len(dup) > 0 {
		t.Errorf("%d events have their effect applied more than once, e.g. %v", len(dup), dup[:min(5, len(dup))])
	}
	if len(perID) > 0 {
		t.Errorf("%d effects for events never produced", len(perID))
	}
	var processed int
	if err := fx.db.QueryRow(ctx, `SELECT count(*) FROM processed_events WHERE consumer = $1`, rebalanceConsumer).Scan(&processed); err != nil {
		t.Fatal(err)
	}
	if processed != len(evs) {
		t.Errorf("processed_events holds %d rows for %s, want %d", processed, rebalanceConsumer, len(evs))
	}

	// Per key, effects in event order: in insertion order (id) seq rises by
	// one, and each saw exactly its predecessors applied.
	want := map[string]int{}
	for _, k := range keys {
		want[k]++
	}
	next := map[string]int{}
	for _, r := range got {
		if r.seq != next[r.key] || r.prev != r.seq {
			t.Errorf("key %s: effect of seq %d applied as number %d (having seen %d earlier effects); want seq %d", r.key, r.seq, next[r.key], r.prev, next[r.key])
		}
		next[r.key]++
	}
	for k, n := range want {
		if n > 1 && next[k] != n {
			t.Errorf("key %s: %d effects, want %d", k, next[k], n)
		}
	}

	// The rebalances happened mid-stream: B took partitions while A was
	// running, and after A left B delivered all three partitions; A
	// delivered nothing once stopped.
	fx.mu.Lock()
	defer fx.mu.Unlock()
	a, b := fx.byPhase["A"], fx.byPhase["B"]
	if b[phaseBoth] == 0 {
		t.Errorf("B applied nothing while A ran: no partition moved on join (A=%v B=%v)", *a, *b)
	}
	if a[phaseBOnly] != 0 {
		t.Errorf("A applied %d effects after it stopped", a[phaseBOnly])
	}
	partsOf := func(m map[int32]bool) []int32 {
		var ps []int32
		for p := range m {
			ps = append(ps, p)
		}
		slices.Sort(ps)
		return ps
	}
	if ps := partsOf(fx.parts["B"][phaseBOnly]); len(ps) != 3 {
		t.Errorf("after A left, B applied effects from partitions %v, want all 3", ps)
	}

	deliveries, redelivered, handoff := 0, 0, 0
	for id, n := range fx.deliveries {
		deliveries += n
		if n > 1 {
			redelivered++
		}
		if len(fx.deliveredBy[id]) > 1 {
			handoff++
		}
	}
	if deliveries < len(evs) {
		t.Errorf("%d deliveries for %d events", deliveries, len(evs))
	}
	t.Logf("deliveries %d for %d events: %d redeliveries (%d events delivered more than once, %d of them by both A and B; %d answers were 500; store.Once skipped %d duplicates)",
		deliveries, len(evs), deliveries-len(evs), redelivered, handoff, fx.failed, fx.duplicates)
	if wantHandoff && (handoff == 0 || fx.duplicates == 0) {
		t.Errorf("A left records delivered but uncommitted, yet B redelivered none (%d events delivered by both; %d duplicates skipped)", handoff, fx.duplicates)
	}
	for i := range phaseCount {
		t.Logf("phase %-6s: A applied %3d from partitions %v, B applied %3d from partitions %v",
			phaseNames[i], a[i], partsOf(fx.parts["A"][i]), b[i], partsOf(fx.parts["B"][i]))
	}
}

// keysOn returns n keys the producer's partitioner puts on partition part
// of topic (3 partitions), named prefix-<i>.
func keysOn(topic string, part, n int, prefix string) []string {
	p := kgo.StickyKeyPartitioner(nil).ForTopic(topic)
	var keys []string
	for i := 0; len(keys) < n; i++ {
		k := fmt.Sprintf("%s-%d", prefix, i)
		if p.Partition(&kgo.Record{Topic: topic, Key: []byte(k)}, 3) == part {
			keys = append(keys, k)
		}
	}
	return keys
}

// TestRebalanceRetryingPartitionDoesNotStallOthers: while one partition's
// record is being retried (its subscriber keeps answering 500), the other
// partitions keep delivering, as the stand-in documents ("partitions run in
// parallel"), and so the consumer keeps polling and lets the group
// rebalance. Records keep arriving on the stuck partition too, each in a
// fetch of its own.
func TestRebalanceRetryingPartitionDoesNotStallOthers(t *testing.T) {
	files := baseManifests()
	files["t.yaml"] = withDeliveryOrder(trigger("effects", "effects", map[string]string{"type": rebalanceType},
		"retry: 10000\nbackoffPolicy: linear\nbackoffDelay: PT0.01S"), standin.Ordered)
	e := newEnv(t, files)
	fx := newEffects(t)
	const stuckPart, rounds = 0, 12
	stuck := keysOn(events.TopicOrders, stuckPart, 1, "stuck")[0]
	var released atomic.Bool
	srv := fx.server("A", func(_ int64, _ int32, key string) (bool, bool, time.Duration) {
		return key == stuck && !released.Load(), false, 0
	})
	cfg := e.config()
	cfg.Resolve = func(string, string) (string, error) { return srv.URL + "/", nil }
	e.start(cfg)

	produce := func(key string) event.Event {
		ev := newEvent(rebalanceType, effectPayload{Key: key})
		e.produce(events.TopicOrders, key, ev)
		return ev
	}
	first := produce(stuck)
	fx.waitFor("the stuck record being retried", func() bool { return fx.failingEvents("A") >= 1 })
	behind := keysOn(events.TopicOrders, stuckPart, rounds, "behind")
	others := [2][]string{keysOn(events.TopicOrders, 1, rounds, "other"), keysOn(events.TopicOrders, 2, rounds, "other")}
	var queued []event.Event
	for i := range rounds {
		// One more record behind the stuck one (it waits, in order), and
		// one on another partition, which must not wait.
		queued = append(queued, produce(behind[i]))
		ev := produce(others[i%2][i])
		fx.waitFor(fmt.Sprintf("round %d: partition %d delivering while partition %d retries", i, 1+i%2, stuckPart), func() bool {
			fx.mu.Lock()
			defer fx.mu.Unlock()
			return fx.appliedIDs[ev.ID()]
		})
	}

	// Released, the stuck partition catches up in order.
	released.Store(true)
	fx.waitFor("the stuck partition catching up", func() bool { return fx.applied.Load() == 1+2*rounds })
	rows, err := fx.db.Query(context.Background(), `SELECT ce_id FROM rebalance_effects ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, id := range ids {
		if id == first.ID() || slices.ContainsFunc(queued, func(ev event.Event) bool { return ev.ID() == id }) {
			got = append(got, id)
		}
	}
	want := []string{first.ID()}
	for _, ev := range queued {
		want = append(want, ev.ID())
	}
	if !slices.Equal(got, want) {
		t.Errorf("stuck partition's effects out of order:\n got %v\nwant %v", got, want)
	}
}
