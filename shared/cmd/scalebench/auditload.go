package main

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/coffeebuddy/coffeebuddy/shared/audit"
)

// insert is one audit write by a writer: when it was issued and how long
// it took from BEGIN to COMMIT.
type insert struct {
	at   time.Time
	took time.Duration
}

// writers stand for the functions: each writes one audit row per interval
// in its own transaction (BEGIN, audit.Record, COMMIT: what a state change
// does besides its own rows), on its own connection, until stopped. A write
// that takes longer than the interval delays that writer's next one, so a
// blocked table shows as a long write, not as a queue of short ones.
type writers struct {
	mu      sync.Mutex
	inserts []insert
	errs    []error
	stop    chan struct{}
	wg      sync.WaitGroup
}

func startWriters(ctx context.Context, pool *pgxpool.Pool, n int, interval time.Duration) *writers {
	w := &writers{stop: make(chan struct{})}
	for i := range n {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			t := time.NewTicker(interval)
			defer t.Stop()
			for seq := 0; ; seq++ {
				select {
				case <-w.stop:
					return
				case <-ctx.Done():
					return
				case <-t.C:
				}
				began := time.Now()
				err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
					return audit.Record(ctx, tx, audit.Entry{EventType: audit.OrderPlaced, ActorUserID: "U1000001",
						TeamID: "T1001", ChannelID: "C1000001", RunID: uuid.New(), CEID: fmt.Sprintf("bench-%d-%d", i, seq),
						Details: map[string]any{"drink": "latte", "size": "small"}})
				})
				took := time.Since(began)
				w.mu.Lock()
				if err != nil {
					w.errs = append(w.errs, err)
				} else {
					w.inserts = append(w.inserts, insert{began, took})
				}
				w.mu.Unlock()
			}
		}()
	}
	return w
}

// finish stops the writers and returns every write, or the first error.
func (w *writers) finish() ([]insert, error) {
	close(w.stop)
	w.wg.Wait()
	if len(w.errs) > 0 {
		return nil, fmt.Errorf("%d audit writes failed, first: %w", len(w.errs), w.errs[0])
	}
	return w.inserts, nil
}

// latency summarises the writes issued in [from, to).
type latency struct {
	N                   int
	PerSecond           float64
	P50, P99, P999, Max time.Duration
}

func window(ins []insert, from, to time.Time) latency {
	var s []time.Duration
	for _, in := range ins {
		if !in.at.Before(from) && in.at.Before(to) {
			s = append(s, in.took)
		}
	}
	if len(s) == 0 {
		return latency{}
	}
	slices.Sort(s)
	rank := func(p float64) time.Duration { return s[max(0, int(math.Ceil(p*float64(len(s))))-1)] }
	return latency{N: len(s), PerSecond: float64(len(s)) / to.Sub(from).Seconds(),
		P50: rank(0.50), P99: rank(0.99), P999: rank(0.999), Max: s[len(s)-1]}
}

// holdReader opens a read transaction on audit_logs and keeps it (and its
// ACCESS SHARE lock) for d: an audit API export or a pg_dump in flight when
// the retention starts. DELETE does not mind it; DROP or DETACH PARTITION
// (ACCESS EXCLUSIVE on the parent) waits for it, and so does every writer
// queued behind that. The channel gets how long the transaction lasted.
func holdReader(ctx context.Context, pool *pgxpool.Pool, d time.Duration) <-chan readerResult {
	done := make(chan readerResult, 1)
	if d <= 0 {
		done <- readerResult{}
		return done
	}
	go func() {
		began := time.Now()
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			var n int64
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM audit_logs WHERE occurred_at > now() - interval '1 hour'`).Scan(&n); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `SELECT pg_sleep($1::float8)`, d.Seconds())
			return err
		})
		done <- readerResult{took: time.Since(began), err: err}
	}()
	return done
}

type readerResult struct {
	took time.Duration
	err  error
}
