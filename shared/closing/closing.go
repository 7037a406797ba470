// Package closing closes a coffee run: the one routine behind both "Close
// now" (run-close) and last call (run-tick), so the two cannot disagree. In
// one transaction it stops orders, assigns the runner, writes the audit row
// and the run.closed outbox event; then it publishes the event.
package closing

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/coffeebuddy/coffeebuddy/shared/audit"
	"github.com/coffeebuddy/coffeebuddy/shared/coffee"
	"github.com/coffeebuddy/coffeebuddy/shared/events"
	"github.com/coffeebuddy/coffeebuddy/shared/outbox"
	"github.com/coffeebuddy/coffeebuddy/shared/store"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
)

// Publisher publishes committed outbox rows.
type Publisher interface {
	Publish(ctx context.Context, ids ...int64) error
}

// Closer closes runs.
type Closer struct {
	store  *store.Store
	outbox Publisher
	spread prometheus.Gauge
	source string
}

// New returns a Closer; source is the CloudEvent source of run.closed
// (the calling function). reg may be nil.
func New(s *store.Store, p Publisher, source string, reg prometheus.Registerer) *Closer {
	c := &Closer{store: s, outbox: p, source: source, spread: prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "coffeebuddy_runner_fairness_stddev",
		Help: "Standard deviation of completed runs (last 30 days) among the candidates of the latest assignment.",
	})}
	if reg != nil {
		reg.MustRegister(c.spread)
	}
	return c
}

// Result says what Close did.
type Result struct {
	Run        coffee.Run
	Assignment coffee.Assignment
	Closed     bool // false: already closed, or a duplicate event
}

// Close closes run id on behalf of closedBy ("last_call" or a user id),
// deduplicated by (consumer, ceID). A run that is no longer active is left
// as it is (Closed=false, no error).
func (c *Closer) Close(ctx context.Context, consumer, ceID string, id uuid.UUID, closedBy string, now time.Time, log *slog.Logger) (Result, error) {
	var res Result
	var outboxID int64
	var cands []coffee.Candidate
	dup, err := c.store.Once(ctx, consumer, ceID, func(tx pgx.Tx) error {
		run, a, err := store.CloseRun(ctx, tx, id, now)
		if store.IsDone(err) {
			res.Run = run
			return nil
		}
		if err != nil {
			return err
		}
		res = Result{Run: run, Assignment: a, Closed: true}
		if a.RunnerUserID != "" {
			if cands, err = store.Candidates(ctx, tx, run, now); err != nil {
				return err
			}
		}
		if err := audit.Record(ctx, tx, audit.Entry{
			EventType: audit.RunClosed, ActorUserID: actor(closedBy), TeamID: run.TeamID, ChannelID: run.ChannelID,
			RunID: run.ID, CEID: ceID,
			Details: map[string]any{"runner": a.RunnerUserID, "reason": a.Reason, "volunteer": a.Volunteer, "closed_by": closedBy},
		}); err != nil {
			return err
		}
		outboxID, err = outbox.Enqueue(ctx, tx, outbox.Message{
			Type: events.TypeRunClosed, Source: c.source, Subject: run.ID.String(), Key: run.ID.String(),
			Data: events.RunClosed{RunID: run.ID.String(), RunnerUserID: a.RunnerUserID, Reason: a.Reason, ClosedBy: closedBy},
		})
		return err
	})
	if err != nil {
		return res, fmt.Errorf("closing: %w", err)
	}
	if dup || !res.Closed {
		return Result{Run: res.Run}, nil
	}
	if len(cands) > 0 {
		counts := make([]int, len(cands))
		for i, cd := range cands {
			counts[i] = cd.CompletedRuns
		}
		spread := coffee.StdDev(counts)
		c.spread.Set(spread)
		log.Info("runner assigned", "run_id", id, "runner", res.Assignment.RunnerUserID, "reason", res.Assignment.Reason,
			"volunteer", res.Assignment.Volunteer, "candidates", len(cands), "fairness_stddev", spread)
	} else {
		log.Info("run closed without a runner", "run_id", id, "reason", res.Assignment.Reason)
	}
	if err := c.outbox.Publish(ctx, outboxID); err != nil {
		log.Warn("outbox publish deferred to the sweep", "err", err)
	}
	return res, nil
}

func actor(closedBy string) string {
	if closedBy == "last_call" {
		return ""
	}
	return closedBy
}
