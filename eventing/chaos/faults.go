package chaos

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coffeebuddy/coffeebuddy/shared/slackstandin"
)

// faultPhase is one fault and when it strikes. inject runs once a third
// of the phase's orders are in (mid-batch) and returns once the fault is
// healed; whole faults are on for the entire phase instead.
type faultPhase struct {
	name   string
	whole  bool
	inject func(ctx context.Context, c *suite) (string, error)
	heal   func(c *suite)
}

// killed are the functions the kill phase kills mid-batch: the order
// writer, the order confirmer and the runner notifier.
var killed = []string{"order-place", "order-confirm", "runner-notify"}

var allPhases = []faultPhase{
	{name: "kafka-restart", inject: func(ctx context.Context, c *suite) (string, error) {
		if c.st.Kafka == nil {
			return "", errors.New("chaos: kafka-restart needs the embedded Kafka (unset KAFKA_BROKERS)")
		}
		c.st.Kafka.Stop()
		c.logf("kafka: cluster stopped")
		sleep(ctx, c.cfg.Outage)
		if err := c.st.Kafka.Restart(ctx); err != nil {
			return "", fmt.Errorf("chaos: restart Kafka: %w", err)
		}
		c.logf("kafka: cluster restarted")
		return fmt.Sprintf("Kafka cluster stopped for %s, then restarted from its data", c.cfg.Outage), nil
	}},
	{name: "postgres-restart", inject: func(ctx context.Context, c *suite) (string, error) {
		if c.st.Postgres == nil {
			return "", errors.New("chaos: postgres-restart needs the embedded PostgreSQL (unset DATABASE_URL)")
		}
		if err := c.st.Postgres.StopServer(ctx); err != nil {
			return "", fmt.Errorf("chaos: stop PostgreSQL: %w", err)
		}
		c.logf("postgres: server stopped")
		sleep(ctx, c.cfg.Outage)
		if err := c.st.Postgres.StartServer(ctx); err != nil {
			return "", fmt.Errorf("chaos: start PostgreSQL: %w", err)
		}
		c.logf("postgres: server started")
		return fmt.Sprintf("PostgreSQL stopped (fast) for %s, then started", c.cfg.Outage), nil
	}},
	{name: "function-kill", inject: func(ctx context.Context, c *suite) (string, error) {
		for _, n := range killed {
			if err := c.st.KillFunction(n); err != nil {
				return "", err
			}
		}
		c.logf("killed %v (SIGKILL)", killed)
		sleep(ctx, c.cfg.Outage)
		for _, n := range killed {
			if err := c.st.StartFunction(ctx, n); err != nil {
				return "", fmt.Errorf("chaos: restart %s: %w", n, err)
			}
		}
		c.logf("restarted %v", killed)
		return fmt.Sprintf("%v killed with SIGKILL, restarted %s later", killed, c.cfg.Outage), nil
	}},
	{name: "slack-429", inject: func(ctx context.Context, c *suite) (string, error) {
		return c.storm(ctx, http.StatusTooManyRequests, time.Second), nil
	}, heal: func(c *suite) { c.st.Slack.SetFaultAll(nil) }},
	{name: "slack-500", inject: func(ctx context.Context, c *suite) (string, error) {
		return c.storm(ctx, http.StatusInternalServerError, 0), nil
	}, heal: func(c *suite) { c.st.Slack.SetFaultAll(nil) }},
	{name: "triple-delivery", whole: true, inject: func(_ context.Context, c *suite) (string, error) {
		c.st.Eventing().SetCopies(3)
		c.logf("eventing: every delivery sent 3 times")
		return "every event delivered 3 times (concurrently) for the whole phase", nil
	}, heal: func(c *suite) { c.st.Eventing().SetCopies(1) }},
	// The manifests' real delivery modes: every Trigger but order-place and
	// order-confirm is unordered (ADR 0012). Shuffling makes the concurrent
	// deliveries of a partition arrive in a random order, as Knative's
	// unordered dispatch may, and duplicating them at once adds the races
	// of a redelivery overtaking its original.
	{name: "shuffled-delivery", whole: true, inject: func(_ context.Context, c *suite) (string, error) {
		c.st.Eventing().SetShuffle(shuffleMax)
		c.st.Eventing().SetCopies(2)
		c.logf("eventing: unordered deliveries delayed 0-%s at random, each sent twice", shuffleMax)
		return fmt.Sprintf("unordered Triggers' deliveries shuffled (each delayed 0–%s at random) and sent twice, for the whole phase", shuffleMax), nil
	}, heal: func(c *suite) { c.st.Eventing().SetShuffle(0); c.st.Eventing().SetCopies(1) }},
}

// shuffleMax is the longest random delay of a shuffled delivery: longer
// than a handler takes, so concurrent deliveries really change places.
const shuffleMax = 300 * time.Millisecond

// Phases names every phase, in the order a full run plays them.
func Phases() []string {
	names := make([]string, len(allPhases))
	for i, p := range allPhases {
		names[i] = p.name
	}
	return names
}

func selectPhases(names []string) ([]faultPhase, error) {
	if len(names) == 0 {
		return allPhases, nil
	}
	var out []faultPhase
	for _, n := range names {
		found := false
		for _, p := range allPhases {
			if p.name == n {
				out, found = append(out, p), true
			}
		}
		if !found {
			return nil, fmt.Errorf("chaos: unknown phase %q", n)
		}
	}
	return out, nil
}

// storm makes the Slack stand-in fail cfg.StormShare of all Web API calls
// with status for cfg.Storm.
func (c *suite) storm(ctx context.Context, status int, retryAfter time.Duration) string {
	seed := uint64(time.Now().UnixNano())
	c.st.Slack.SetFaultAll(slackstandin.FailFraction(c.cfg.StormShare, status, retryAfter, seed))
	c.logf("slack: %d to %.0f%% of calls", status, c.cfg.StormShare*100)
	sleep(ctx, c.cfg.Storm)
	c.st.Slack.SetFaultAll(nil)
	c.logf("slack: storm over")
	return fmt.Sprintf("Slack answered %d to %.0f%% of Web API calls for %s", status, c.cfg.StormShare*100, c.cfg.Storm)
}

// PhaseReport is what one phase did.
type PhaseReport struct {
	Name       string
	Fault      string
	Runs       int
	Accepted   int // orders the ingress accepted
	Retries    int // user actions repeated because the bot did not take them
	Completed  int // runs whose completion was posted
	Elapsed    time.Duration
	FaultErr   error
	Incomplete []string
}

// phase plays runs concurrently and injects ph mid-batch.
func (c *suite) phase(ctx context.Context, ph faultPhase, runs []*run) (PhaseReport, error) {
	started := time.Now()
	pr := PhaseReport{Name: ph.name, Runs: len(runs)}
	c.logf("phase %s: %d runs × %d orders", ph.name, len(runs), c.cfg.OrdersPerRun)
	if ph.heal != nil {
		defer ph.heal(c)
	}
	var accepted atomic.Int64
	third := int64(len(runs) * c.cfg.OrdersPerRun / 3)
	faultDone := make(chan struct{})
	go func() {
		defer close(faultDone)
		if !ph.whole {
			// Mid-batch: once a third of the orders are in.
			for accepted.Load() < third && ctx.Err() == nil {
				sleep(ctx, 20*time.Millisecond)
			}
		}
		pr.Fault, pr.FaultErr = ph.inject(ctx, c)
	}()
	if ph.whole {
		<-faultDone
	}
	var wg sync.WaitGroup
	for _, r := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.play(ctx, c, &accepted)
		}()
	}
	wg.Wait()
	<-faultDone
	for _, r := range runs {
		pr.Accepted += len(r.accepted)
		pr.Retries += r.retries
		if r.completedSeen {
			pr.Completed++
		} else {
			pr.Incomplete = append(pr.Incomplete, fmt.Sprintf("%s: %s", r.channel, r.err))
		}
	}
	pr.Elapsed = time.Since(started)
	c.logf("phase %s: done in %s: %d/%d runs completed, %d orders accepted, %d retried actions",
		ph.name, pr.Elapsed.Round(time.Second), pr.Completed, pr.Runs, pr.Accepted, pr.Retries)
	if pr.FaultErr != nil {
		return pr, pr.FaultErr
	}
	return pr, nil
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
