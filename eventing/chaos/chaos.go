// Package chaos is the fault-injection suite (`make chaos`; a shortened
// form runs in `make test`). It drives whole coffee runs through the real
// local stack (devstack: every function a process, Kafka, PostgreSQL, the
// eventing stand-in, the Slack stand-in) as Slack users would, while it
// injects one fault at a time: Kafka stopped and restarted, PostgreSQL
// restarted, function processes killed mid-batch, Slack answering 429 and
// then 500 to most calls, every event delivered three times. Afterwards it
// checks, from the database and the Slack calls the stand-in recorded,
// that nothing was lost and nothing was done twice.
package chaos

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/coffeebuddy/coffeebuddy/eventing/devstack"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Config sizes a chaos run.
type Config struct {
	RunsPerPhase int           // coffee runs started in each fault phase
	OrdersPerRun int           // distinct users ordering in each run
	Workers      int           // users ordering at once within a run
	Outage       time.Duration // how long Kafka / PostgreSQL / killed functions stay down
	Storm        time.Duration // how long Slack answers 429 (then 500) to most calls
	StormShare   float64       // the share of Slack calls failed during a storm
	Broken       int           // deliberately broken records sent at the start
	Settle       time.Duration // the longest wait for a phase's runs to finish
	Phases       []string      // default: every phase, in order
	Progress     io.Writer     // progress lines; nil for none
}

// Full is `make chaos`: 7 phases × 9 runs × 20 orders = 1,260 orders over
// 63 runs, 60-second Slack storms.
func Full() Config {
	return Config{RunsPerPhase: 9, OrdersPerRun: 20, Workers: 4,
		Outage: 5 * time.Second, Storm: 60 * time.Second, StormShare: 0.8, Broken: 6, Settle: 10 * time.Minute}
}

// Short is the form `make test` runs: every phase, fewer runs, short storms.
func Short() Config {
	return Config{RunsPerPhase: 2, OrdersPerRun: 5, Workers: 3,
		Outage: 3 * time.Second, Storm: 8 * time.Second, StormShare: 0.8, Broken: 3, Settle: 5 * time.Minute}
}

// Run drives cfg's load through st, injecting each phase's fault, then
// waits for the stack to settle and checks the outcome. A non-nil error
// means the suite could not run; broken guarantees are Report.Violations.
func Run(ctx context.Context, st *devstack.Stack, cfg Config) (*Report, error) {
	if st.Slack == nil {
		return nil, fmt.Errorf("chaos: needs the local Slack stand-in")
	}
	phases, err := selectPhases(cfg.Phases)
	if err != nil {
		return nil, err
	}
	db, err := pgxpool.New(ctx, st.DatabaseURL)
	if err != nil {
		return nil, fmt.Errorf("chaos: %w", err)
	}
	defer db.Close()
	c := &suite{st: st, cfg: cfg, db: db, start: time.Now()}
	if c.cfg.Progress == nil {
		c.cfg.Progress = io.Discard
	}
	broken, err := c.sendBroken(ctx)
	if err != nil {
		return nil, err
	}
	rep := &Report{Broken: broken}
	n := 0
	for _, ph := range phases {
		runs := make([]*run, cfg.RunsPerPhase)
		for i := range runs {
			runs[i] = c.newRun(ph.name, n)
			n++
		}
		pr, err := c.phase(ctx, ph, runs)
		rep.Phases = append(rep.Phases, pr)
		c.runs = append(c.runs, runs...)
		if err != nil {
			return rep, err
		}
	}
	if err := c.settle(ctx); err != nil {
		return rep, err
	}
	if err := c.check(ctx, rep); err != nil {
		return rep, err
	}
	rep.Elapsed = time.Since(c.start)
	return rep, nil
}

// suite is one chaos run's state.
type suite struct {
	st    *devstack.Stack
	cfg   Config
	db    *pgxpool.Pool
	start time.Time
	runs  []*run
	mu    sync.Mutex // guards progress writes
}

func (c *suite) logf(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	fmt.Fprintf(c.cfg.Progress, "[%6.1fs] %s\n", time.Since(c.start).Seconds(), fmt.Sprintf(format, args...))
}
