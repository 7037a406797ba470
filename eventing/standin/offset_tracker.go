package standin

import (
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"
)

// offsetTracker keeps an unordered partition's commits in order. Records
// finish in any order, but the committed offset only moves to just past the
// highest record such that it and every record before it are done (2xx,
// dead-lettered or filtered out): never past one still in flight or
// retrying. That is the Kafka Broker's OffsetManager rule (commit "the next
// clear bit"). Records, not offset arithmetic, are tracked, so gaps in a
// partition's offsets (compaction, transaction markers) need no special
// case.
type offsetTracker struct {
	topic     string
	partition int32
	commit    func(*kgo.Record) error

	mu      sync.Mutex
	pending []*tracked // in offset order, from the oldest not yet done
	upTo    *tracked   // highest record of the done prefix

	// commitMu serialises commits, so a slow commit of a lower offset can
	// never land after, and so rewind, a higher one.
	commitMu  sync.Mutex
	committed int64 // next offset committed by us; -1: none yet
}

// tracked is one record's place in its partition's commit order; only what
// a commit needs is kept, not the record's value.
type tracked struct {
	offset int64
	epoch  int32
	done   bool
}

func newOffsetTracker(topic string, partition int32, commit func(*kgo.Record) error) *offsetTracker {
	return &offsetTracker{topic: topic, partition: partition, commit: commit, committed: -1}
}

// track registers r, which must come after every record tracked before.
func (t *offsetTracker) track(r *kgo.Record) *tracked {
	e := &tracked{offset: r.Offset, epoch: r.LeaderEpoch}
	t.mu.Lock()
	t.pending = append(t.pending, e)
	t.mu.Unlock()
	return e
}

// done marks e done and moves the done prefix on; flush commits it.
func (t *offsetTracker) done(e *tracked) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e.done = true
	for len(t.pending) > 0 && t.pending[0].done {
		t.upTo = t.pending[0]
		t.pending[0] = nil
		t.pending = t.pending[1:]
	}
}

// flush commits the done prefix if it moved past the last commit.
func (t *offsetTracker) flush() {
	t.commitMu.Lock()
	defer t.commitMu.Unlock()
	t.mu.Lock()
	up := t.upTo
	t.mu.Unlock()
	if up == nil || up.offset < t.committed {
		return
	}
	r := &kgo.Record{Topic: t.topic, Partition: t.partition, Offset: up.offset, LeaderEpoch: up.epoch}
	if t.commit(r) == nil {
		t.committed = up.offset + 1
	}
}
