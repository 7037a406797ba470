package chaos

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coffeebuddy/coffeebuddy/eventing/devstack"
	"github.com/coffeebuddy/coffeebuddy/shared/blocks"
	"github.com/coffeebuddy/coffeebuddy/shared/slackstandin"
)

// order is what a user typed into the order form.
type order struct{ drink, size, custom string }

var (
	drinks = []string{"latte", "espresso", "cappuccino", "americano", "mocha"}
	sizes  = []string{"small", "medium", "large"}
	// customs include text that must be stored verbatim and ping nobody.
	customs = []string{"", "oat milk", "extra hot, no foam", `<!channel> *bold* & <@U0BOSS>`, `'; DROP TABLE orders; --`}
)

// run is one coffee run as the simulated users play it.
type run struct {
	phase   string
	channel string
	users   []devstack.User // users[0] starts and closes the run

	mu       sync.Mutex
	accepted map[string]order // user id → the order the ingress accepted
	// unsure are users with a submission that failed for them but may
	// have been taken (the ingress's Kafka produce timed out): only they
	// may have a second, hidden submission.
	unsure        map[string]bool
	submissions   int // accepted submissions (an edit is a second one)
	retries       int
	runID, runTS  string
	runner        string
	completedSeen bool
	err           error
}

func (c *suite) newRun(phase string, n int) *run {
	r := &run{phase: phase, channel: fmt.Sprintf("C0CHAOS%03d", n), accepted: map[string]order{}, unsure: map[string]bool{}}
	// Runs of one phase (played at once) have disjoint users: Slack shows
	// a person one modal at a time, so one user ordering in two runs at
	// once is not something a person can do. Later phases reuse the same
	// users, so preferences accumulate across runs.
	for i := range c.cfg.OrdersPerRun {
		u := (n%c.cfg.RunsPerPhase)*c.cfg.OrdersPerRun + i
		r.users = append(r.users, devstack.User{ID: fmt.Sprintf("U0CH%03d", u), Name: fmt.Sprintf("chaos-user-%02d", u)})
	}
	return r
}

// play acts the whole run: /coffee, every user orders, the initiator closes
// it, the runner marks it complete. Like a person, each step is repeated
// when the bot visibly did not take it (an error answer, a modal that did
// not open, a DM that did not come), until cfg.Settle has passed.
func (r *run) play(ctx context.Context, c *suite, accepted *atomic.Int64) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Settle)
	defer cancel()
	p := &devstack.Player{Slack: c.st.Slack, Team: slackstandin.DefaultTeamID, Channel: r.channel, Wait: 5 * time.Second}
	if r.err = r.start(ctx, p); r.err != nil {
		return
	}
	if r.err = r.order(ctx, c, p, accepted); r.err != nil {
		return
	}
	r.waitOrdersStored(ctx, c)
	if r.err = r.close(ctx, p); r.err != nil {
		return
	}
	r.err = r.complete(ctx, p)
}

func (r *run) retry(ctx context.Context) {
	r.mu.Lock()
	r.retries++
	r.mu.Unlock()
	sleep(ctx, 300*time.Millisecond)
}

// start types /coffee until the run message is in the channel. A second
// /coffee while the first is on its way joins the same run (one active run
// per channel), so repeating is safe.
func (r *run) start(ctx context.Context, p *devstack.Player) error {
	for ctx.Err() == nil {
		if _, err := p.Command(ctx, r.users[0], "/coffee", "60"); err != nil {
			r.retry(ctx)
			continue
		}
		wait := *p
		wait.Wait = 15 * time.Second
		if msg, id, err := wait.RunMessage(ctx); err == nil {
			r.runID, r.runTS = id, msg.TS
			return nil
		}
		r.retry(ctx)
	}
	return fmt.Errorf("no run message: %w", ctx.Err())
}

// order has every user order, Workers at a time.
func (r *run) order(ctx context.Context, c *suite, p *devstack.Player, accepted *atomic.Int64) error {
	work := make(chan int)
	errs := make(chan error, len(r.users))
	var wg sync.WaitGroup
	for range max(1, c.cfg.Workers) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				u := r.users[i]
				o := order{drinks[i%len(drinks)], sizes[i%len(sizes)], customs[i%len(customs)]}
				if err := r.orderOne(ctx, p, u, o); err != nil {
					errs <- err
					continue
				}
				accepted.Add(1)
			}
		}()
	}
	for i := range r.users {
		work <- i
	}
	close(work)
	wg.Wait()
	close(errs)
	return <-errs // the first error, or nil
}

// orderOne opens the order form and submits it until the ingress accepts
// the order (an empty 200, which closes the modal).
func (r *run) orderOne(ctx context.Context, p *devstack.Player, u devstack.User, o order) error {
	msg := slackstandin.Message{TS: r.runTS, Channel: r.channel}
	for ctx.Err() == nil {
		if m, _, err := p.RunMessage(ctx); err == nil {
			msg = m
		}
		before := len(p.Slack.Views(u.ID))
		if err := p.Click(ctx, u, msg, blocks.ActionAddOrder); err != nil {
			r.retry(ctx)
			continue
		}
		if !waitFor(ctx, 5*time.Second, func() bool { return len(p.Slack.Views(u.ID)) > before }) {
			r.retry(ctx) // views.open failed (Slack faults): click again
			continue
		}
		for attempt := 0; attempt < 20 && ctx.Err() == nil; attempt++ {
			answer, err := p.Submit(ctx, u, o.drink, o.size, o.custom)
			if err == nil && answer == "" {
				r.mu.Lock()
				r.accepted[u.ID] = o
				r.submissions++
				r.mu.Unlock()
				return nil
			}
			if err == nil && !strings.Contains(answer, "Please press Place order again") {
				return fmt.Errorf("%s's order refused: %s", u.Name, answer)
			}
			r.mu.Lock()
			r.unsure[u.ID] = true
			r.mu.Unlock()
			r.retry(ctx)
		}
	}
	return fmt.Errorf("%s could not order: %w", u.Name, ctx.Err())
}

// waitOrdersStored paces the initiator like a person watching the run
// message: close only once every accepted order is in. It gives up after
// two minutes; a lost order then shows in the checks.
func (r *run) waitOrdersStored(ctx context.Context, c *suite) {
	want := len(r.accepted)
	waitFor(ctx, 2*time.Minute, func() bool {
		var n int
		err := c.db.QueryRow(ctx, `SELECT count(*) FROM orders WHERE run_id = $1`, r.runID).Scan(&n)
		return err == nil && n >= want
	})
}

// close clicks Close now until the runner's DM arrives.
func (r *run) close(ctx context.Context, p *devstack.Player) error {
	for ctx.Err() == nil {
		msg := slackstandin.Message{TS: r.runTS, Channel: r.channel}
		if m, _, err := p.RunMessage(ctx); err == nil {
			msg = m
		}
		if hasButton(msg, blocks.ActionCloseNow) {
			if err := p.Click(ctx, r.users[0], msg, blocks.ActionCloseNow); err != nil {
				r.retry(ctx)
				continue
			}
		}
		if waitFor(ctx, 20*time.Second, func() bool { return r.findRunnerDM(p) != nil }) {
			return nil
		}
		r.retry(ctx)
	}
	return fmt.Errorf("no runner DM: %w", ctx.Err())
}

// findRunnerDM returns the DM carrying this run's Mark complete button and
// records its recipient as the runner.
func (r *run) findRunnerDM(p *devstack.Player) *slackstandin.Message {
	for _, u := range r.users {
		for _, m := range p.Slack.Messages(p.Slack.DMChannel(u.ID)) {
			if devstack.ButtonValue(m.Blocks, blocks.ActionComplete) == r.runID {
				r.mu.Lock()
				r.runner = u.ID
				r.mu.Unlock()
				return &m
			}
		}
	}
	return nil
}

// complete has the runner click Mark complete until the completion reply is
// in the thread.
func (r *run) complete(ctx context.Context, p *devstack.Player) error {
	for ctx.Err() == nil {
		dm := r.findRunnerDM(p)
		if err := p.Click(ctx, devstack.User{ID: r.runner, Name: r.runner}, *dm, blocks.ActionComplete); err != nil {
			r.retry(ctx)
			continue
		}
		if waitFor(ctx, 20*time.Second, func() bool { return len(completionReplies(p.Slack, r)) > 0 }) {
			r.completedSeen = true
			return nil
		}
		r.retry(ctx)
	}
	return fmt.Errorf("no completion reply: %w", ctx.Err())
}

// hasButton says whether msg has the button actionID.
func hasButton(msg slackstandin.Message, actionID string) bool {
	return devstack.ButtonValue(msg.Blocks, actionID) != ""
}

// waitFor polls cond every 25 ms for up to d.
func waitFor(ctx context.Context, d time.Duration, cond func() bool) bool {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	for !cond() {
		if ctx.Err() != nil {
			return false
		}
		sleep(ctx, 25*time.Millisecond)
	}
	return true
}
