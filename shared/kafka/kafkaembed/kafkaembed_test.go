package kafkaembed_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/coffeebuddy/coffeebuddy/shared/events"
	"github.com/coffeebuddy/coffeebuddy/shared/kafka"
	"github.com/coffeebuddy/coffeebuddy/shared/kafka/kafkaembed"
	"github.com/twmb/franz-go/pkg/kgo"
)

const topic = "restart.test"

var topics = []events.Topic{{Name: topic, Partitions: 3, ReplicationFactor: 3, Retention: time.Hour}}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// produce sends values [from, to) keyed so they spread over partitions and
// returns the first error.
func produce(ctx context.Context, cl *kgo.Client, from, to int) error {
	return produceAsync(ctx, cl, from, to)()
}

// produceAsync buffers values [from, to) in cl and returns a func that waits
// for their acknowledgements and returns the first error.
func produceAsync(ctx context.Context, cl *kgo.Client, from, to int) (wait func() error) {
	var (
		mu    sync.Mutex
		first error
		wg    sync.WaitGroup
	)
	for i := from; i < to; i++ {
		wg.Add(1)
		v := strconv.Itoa(i)
		cl.Produce(ctx, &kgo.Record{Topic: topic, Key: []byte("k" + v), Value: []byte(v)}, func(_ *kgo.Record, err error) {
			defer wg.Done()
			mu.Lock()
			defer mu.Unlock()
			if err != nil && first == nil {
				first = err
			}
		})
	}
	return func() error {
		wg.Wait()
		return first
	}
}

// poll collects records from cl until done says so or ctx ends.
func poll(ctx context.Context, t *testing.T, cl *kgo.Client, done func([]*kgo.Record) bool) []*kgo.Record {
	t.Helper()
	var out []*kgo.Record
	for !done(out) {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("poll: %v after %d records", ctx.Err(), len(out))
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Logf("fetch error (retried): %v", err) })
		fs.EachRecord(func(r *kgo.Record) { out = append(out, r) })
	}
	return out
}

func values(rs []*kgo.Record) map[string]int {
	m := map[string]int{}
	for _, r := range rs {
		m[string(r.Value)]++
	}
	return m
}

// TestRestartKeepsData drives a cluster the way production clients use it
// (idempotent acks=all producer, a consumer group committing offsets by
// hand) across a stop and a restart from DataDir.
func TestRestartKeepsData(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	e, err := kafkaembed.StartWith(ctx, kafkaembed.Options{DataDir: t.TempDir(), Topics: topics})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	brokers := e.Brokers()

	const n = 150
	prod, err := kafka.NewClient(brokers, quiet(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	if err := produce(ctx, prod, 0, n); err != nil {
		t.Fatalf("produce before restart: %v", err)
	}

	// A live group member reads everything and commits about half of each
	// partition's records.
	group := []kgo.Opt{kgo.ConsumerGroup("g"), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit()}
	c1, err := kafka.NewClient(brokers, quiet(), nil, group...)
	if err != nil {
		t.Fatal(err)
	}
	first := poll(ctx, t, c1, func(rs []*kgo.Record) bool { return len(rs) >= n })
	byPart := map[int32][]*kgo.Record{}
	for _, r := range first {
		byPart[r.Partition] = append(byPart[r.Partition], r)
	}
	committed := map[int32]int64{} // next offset to read per partition
	var toCommit []*kgo.Record
	for p, rs := range byPart {
		half := rs[:len(rs)/2]
		toCommit = append(toCommit, half...)
		committed[p] = int64(len(half)) // offsets start at 0 in a fresh topic
	}
	if err := c1.CommitRecords(ctx, toCommit...); err != nil {
		t.Fatalf("commit: %v", err)
	}

	// Stop, keep producing with the same client into the outage, restart.
	e.Stop()
	if e.Kfake() != nil {
		t.Fatal("Kfake() non-nil while stopped")
	}
	produced := produceAsync(ctx, prod, n, 2*n)
	if err := e.Restart(ctx); err != nil {
		t.Fatalf("restart: %v", err)
	}
	if got := e.Brokers(); !slices.Equal(got, brokers) {
		t.Fatalf("brokers after restart = %v, want %v", got, brokers)
	}
	if err := produced(); err != nil {
		t.Fatalf("produce across restart: %v", err)
	}
	if err := produce(ctx, prod, 2*n, 3*n); err != nil {
		t.Fatalf("produce after restart: %v", err)
	}

	// The live member carries on (at least once: a rejoin may replay
	// uncommitted records).
	later := poll(ctx, t, c1, func(rs []*kgo.Record) bool {
		v := values(rs)
		for i := n; i < 3*n; i++ {
			if v[strconv.Itoa(i)] == 0 {
				return false
			}
		}
		return true
	})
	t.Logf("live consumer read %d records after restart", len(later))
	c1.Close()

	// A new member of the group resumes exactly at the committed offsets.
	c2, err := kafka.NewClient(brokers, quiet(), nil, group...)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	want := 3*n - len(toCommit)
	resumed := poll(ctx, t, c2, func(rs []*kgo.Record) bool { return len(rs) >= want })
	seen := map[int32]bool{}
	for _, r := range resumed {
		if !seen[r.Partition] {
			seen[r.Partition] = true
			if r.Offset != committed[r.Partition] {
				t.Errorf("partition %d resumed at offset %d, committed %d", r.Partition, r.Offset, committed[r.Partition])
			}
		}
	}
	for _, r := range toCommit {
		if values(resumed)[string(r.Value)] > 0 {
			t.Errorf("committed record %s read again by the group", r.Value)
		}
	}

	// Every record is there exactly once: nothing lost, no duplicate from
	// the idempotent producer's retries across the restart.
	all := kafkaRead(ctx, t, brokers, 3*n)
	v := values(all)
	for i := range 3 * n {
		if c := v[strconv.Itoa(i)]; c != 1 {
			t.Errorf("record %d stored %d times", i, c)
		}
	}
	if len(all) != 3*n {
		t.Errorf("topic holds %d records, want %d", len(all), 3*n)
	}
}

// kafkaRead reads the topic from the start until its high watermarks.
func kafkaRead(ctx context.Context, t *testing.T, brokers []string, atLeast int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	rs := poll(ctx, t, cl, func(rs []*kgo.Record) bool { return len(rs) >= atLeast })
	// Anything beyond atLeast would be a duplicate; give it one more
	// short poll to show up.
	short, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	cl.PollFetches(short).EachRecord(func(r *kgo.Record) { rs = append(rs, r) })
	return rs
}

func TestRestartNeedsDataDir(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e, err := kafkaembed.StartWith(ctx, kafkaembed.Options{Topics: topics})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if err := e.Restart(ctx); !errors.Is(err, kafkaembed.ErrNoDataDir) {
		t.Fatalf("Restart without DataDir = %v, want ErrNoDataDir", err)
	}
	if e.Kfake() == nil {
		t.Fatal("refused restart stopped the cluster")
	}
}

func TestRestartAfterClose(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e, err := kafkaembed.StartWith(ctx, kafkaembed.Options{DataDir: t.TempDir(), Topics: topics})
	if err != nil {
		t.Fatal(err)
	}
	e.Close()
	if err := e.Restart(ctx); err == nil {
		e.Close()
		t.Fatal("Restart after Close succeeded")
	}
}

// TestNewClusterOnDataDir is a later make run with COFFEE_DATA_DIR: a new
// cluster (other ports, as with random ports) on the DataDir a closed one
// used finds its records and its consumer group's committed offsets.
func TestNewClusterOnDataDir(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	first, err := kafkaembed.StartWith(ctx, kafkaembed.Options{DataDir: dir, Topics: topics})
	if err != nil {
		t.Fatal(err)
	}
	prod, err := kafka.NewClient(first.Brokers(), quiet(), nil)
	if err != nil {
		t.Fatal(err)
	}
	err = produce(ctx, prod, 0, 10)
	prod.Close()
	if err != nil {
		t.Fatal(err)
	}
	group := []kgo.Opt{kgo.ConsumerGroup("kept"), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit()}
	cons, err := kafka.NewClient(first.Brokers(), quiet(), nil, group...)
	if err != nil {
		t.Fatal(err)
	}
	read := poll(ctx, t, cons, func(rs []*kgo.Record) bool { return len(rs) >= 10 })
	if err := cons.CommitRecords(ctx, read...); err != nil {
		t.Fatal(err)
	}
	cons.Close()
	first.Close()

	second, err := kafkaembed.StartWith(ctx, kafkaembed.Options{DataDir: dir, Topics: topics})
	if err != nil {
		t.Fatalf("start on the first cluster's DataDir: %v", err)
	}
	defer second.Close()
	all := kafkaRead(ctx, t, second.Brokers(), 10)
	v := values(all)
	for i := range 10 {
		if c := v[strconv.Itoa(i)]; c != 1 {
			t.Errorf("record %d stored %d times after the restart", i, c)
		}
	}
	// The group resumes after what it committed: only new records.
	prod2, err := kafka.NewClient(second.Brokers(), quiet(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer prod2.Close()
	if err := produce(ctx, prod2, 10, 11); err != nil {
		t.Fatal(err)
	}
	cons2, err := kafka.NewClient(second.Brokers(), quiet(), nil, group...)
	if err != nil {
		t.Fatal(err)
	}
	defer cons2.Close()
	if got := poll(ctx, t, cons2, func(rs []*kgo.Record) bool { return len(rs) >= 1 }); string(got[0].Value) != "10" {
		t.Errorf("group resumed at record %s, want 10 (the first one it had not committed)", got[0].Value)
	}
}
