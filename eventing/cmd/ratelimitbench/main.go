// Command ratelimitbench is the sustained Slack rate-limiting benchmark
// (issue 4, item 8). It starts the local stack (as `make demo` does, on free
// ports), makes the Slack stand-in enforce one chat.postMessage per second
// per channel and 50 requests per minute for every other method, and plays
// 20 coffee runs at once, one per channel: the initiator types /coffee,
// three people order, the initiator clicks Close now and the runner clicks
// Mark complete in the DM. Rate-limited calls go through the runtime's
// slack.retry path (1, 2, 4 … 60 s; dead-lettered after 10 attempts).
//
// From the stand-in's record of every call it then reports, for every
// message the product meant to send (run message, thread replies, DMs,
// ephemerals), the time from its first attempt to the attempt Slack
// accepted: how many arrived within 5 minutes (target ≥ 95 %), later,
// dead-lettered, missing, and sent twice. It exits non-zero when any
// message is missing or duplicated.
//
//	DEVSTACK_BIN=.tmp/bin ratelimitbench [-runs 20] [-timeout 10m] [-within 5m]
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cloudevents/sdk-go/v2/types"
	"github.com/coffeebuddy/coffeebuddy/eventing/devstack"
	"github.com/coffeebuddy/coffeebuddy/shared/blocks"
	"github.com/coffeebuddy/coffeebuddy/shared/events"
	"github.com/coffeebuddy/coffeebuddy/shared/kafka"
	"github.com/coffeebuddy/coffeebuddy/shared/slackstandin"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twmb/franz-go/pkg/kgo"
)

func main() {
	code, err := run()
	if err != nil {
		fmt.Fprintln(os.Stderr, "ratelimitbench:", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

type config struct {
	runs    int
	timeout time.Duration
	within  time.Duration
	wait    time.Duration
}

func run() (int, error) {
	var cfg config
	flag.IntVar(&cfg.runs, "runs", 20, "concurrent coffee runs, one channel each")
	flag.DurationVar(&cfg.timeout, "timeout", 10*time.Minute, "stop waiting for deliveries after this long (from the first /coffee)")
	flag.DurationVar(&cfg.within, "within", 5*time.Minute, "delivery target: first attempt to accepted call")
	flag.DurationVar(&cfg.wait, "wait", 6*time.Minute, "how long a player waits for each reaction of the bot")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root, err := devstack.RepoRoot()
	if err != nil {
		return 1, err
	}
	logf("starting the local stack (PostgreSQL, Kafka, functions, eventing, Slack stand-in)")
	s, err := devstack.Start(ctx, devstack.Options{
		Root: root, Log: slog.New(slog.DiscardHandler), BinDir: os.Getenv("DEVSTACK_BIN"), RandomPorts: true,
	})
	if err != nil {
		return 1, err
	}
	defer s.Close()
	logf("stack up; function logs in %s", s.LogDir)
	db, err := pgxpool.New(ctx, s.DatabaseURL)
	if err != nil {
		return 1, err
	}
	defer db.Close()
	dl, err := watchDeadLetters(ctx, s.Brokers)
	if err != nil {
		return 1, err
	}
	defer dl.close()

	s.Slack.EnableRateLimits(slackstandin.SlackRateLimits)
	logf("Slack stand-in now enforces %d chat.postMessage/s per channel and %d other calls/min",
		slackstandin.SlackRateLimits.PostMessagePerChannel, slackstandin.SlackRateLimits.OtherPerMinute)

	start := time.Now()
	deadline := start.Add(cfg.timeout)
	rctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	results := make([]*runResult, cfg.runs)
	var wg sync.WaitGroup
	for i := range cfg.runs {
		r := &runResult{
			channel: fmt.Sprintf("C0RL%02d", i+1),
			users: []devstack.User{
				{ID: fmt.Sprintf("U0R%02dA", i+1), Name: fmt.Sprintf("r%02d-ann", i+1)},
				{ID: fmt.Sprintf("U0R%02dB", i+1), Name: fmt.Sprintf("r%02d-ben", i+1)},
				{ID: fmt.Sprintf("U0R%02dC", i+1), Name: fmt.Sprintf("r%02d-cat", i+1)},
			},
		}
		results[i] = r
		wg.Go(func() { r.play(rctx, s, db, cfg.wait) })
	}
	scriptsDone := make(chan struct{})
	go func() { wg.Wait(); close(scriptsDone) }()

	// Wait until every run's script ended and every attempted message was
	// accepted or dead-lettered, or the deadline.
	var rep report
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	lastLog := time.Time{}
	for {
		done := false
		select {
		case <-scriptsDone:
			done = true
		default:
		}
		rep = measure(s.Slack, results, dl.snapshot(), cfg.within)
		if time.Since(lastLog) >= 30*time.Second {
			logf("%s: %d messages attempted, %d accepted, %d pending; %d of %d scripts finished",
				time.Since(start).Round(time.Second), rep.intended, rep.delivered(), rep.pending, finished(results), len(results))
			lastLog = time.Now()
		}
		if done && rep.pending == 0 {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			logf("deadline reached with %d messages pending", rep.pending)
			break
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
		}
	}
	cancel()
	<-scriptsDone
	// Dead letters produced just before the end.
	time.Sleep(2 * time.Second)
	rep = measure(s.Slack, results, dl.snapshot(), cfg.within)
	rep.elapsed = time.Since(start)
	rep.print(os.Stdout, cfg, results, s.Slack)
	if rep.missing > 0 || rep.duplicates > 0 {
		return 1, fmt.Errorf("%d missing, %d duplicated messages", rep.missing, rep.duplicates)
	}
	return 0, nil
}

func finished(rs []*runResult) int {
	n := 0
	for _, r := range rs {
		if r.isDone() {
			n++
		}
	}
	return n
}

// ---- one run ---------------------------------------------------------------

type runResult struct {
	channel string
	users   []devstack.User // users[0] is the initiator

	mu     sync.Mutex
	runID  string
	runner string
	err    error
	done   bool
	took   time.Duration
}

func (r *runResult) isDone() bool { r.mu.Lock(); defer r.mu.Unlock(); return r.done }

func (r *runResult) set(f func()) { r.mu.Lock(); defer r.mu.Unlock(); f() }

// play runs the script; errors are recorded, not fatal: the measurement
// still counts what the product sent.
func (r *runResult) play(ctx context.Context, s *devstack.Stack, db *pgxpool.Pool, wait time.Duration) {
	t0 := time.Now()
	err := r.script(ctx, s, db, wait)
	r.set(func() { r.err, r.done, r.took = err, true, time.Since(t0) })
	if err != nil {
		logf("%s: %v", r.channel, err)
	}
}

func (r *runResult) script(ctx context.Context, s *devstack.Stack, db *pgxpool.Pool, wait time.Duration) error {
	p := devstack.NewPlayer(s, r.channel)
	p.Wait = wait
	ann := r.users[0]
	if _, err := p.Command(ctx, ann, "/coffee", "10"); err != nil {
		return err
	}
	msg, runID, err := p.RunMessage(ctx)
	if err != nil {
		return err
	}
	r.set(func() { r.runID = runID })

	// The initiator orders in the form /coffee opened, if views.open was
	// not rate limited; otherwise, like the others, from Add my order.
	drinks := []string{"latte", "mocha", "americano"}
	for i, u := range r.users {
		if i == 0 && len(s.Slack.Views(u.ID)) > 0 {
			if _, err := p.Submit(ctx, u, drinks[i], "medium", ""); err != nil {
				return err
			}
			continue
		}
		if err := order(ctx, p, u, drinks[i]); err != nil {
			return err
		}
	}
	if err := pollDB(ctx, wait, "3 orders stored", func() (bool, error) {
		var n int
		err := db.QueryRow(ctx, `SELECT count(*) FROM orders WHERE run_id = $1`, runID).Scan(&n)
		return n >= 3, err
	}); err != nil {
		return err
	}
	if err := p.Click(ctx, ann, msg, blocks.ActionCloseNow); err != nil {
		return err
	}
	var runner string
	if err := pollDB(ctx, wait, "a runner assigned", func() (bool, error) {
		var u *string
		err := db.QueryRow(ctx, `SELECT runner_user_id FROM coffee_runs WHERE id = $1`, runID).Scan(&u)
		if u != nil {
			runner = *u
		}
		return runner != "", err
	}); err != nil {
		return err
	}
	r.set(func() { r.runner = runner })
	ru := devstack.User{ID: runner, Name: runner}
	for _, u := range r.users {
		if u.ID == runner {
			ru = u
		}
	}
	dm, err := p.WaitDM(ctx, ru, blocks.ActionComplete)
	if err != nil {
		return err
	}
	if err := p.Click(ctx, ru, dm, blocks.ActionComplete); err != nil {
		return err
	}
	return pollDB(ctx, wait, "the run completed", func() (bool, error) {
		var st string
		err := db.QueryRow(ctx, `SELECT status FROM coffee_runs WHERE id = $1`, runID).Scan(&st)
		return st == "completed", err
	})
}

// order clicks Add my order and submits the form. When views.open was rate
// limited the form does not open (the trigger expires after 3 s, so the
// ingress cannot retry it); the user clicks again after a while, as a
// person would.
func order(ctx context.Context, p *devstack.Player, u devstack.User, drink string) error {
	q := *p
	q.Wait = 10 * time.Second
	var err error
	for attempt := range 30 {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(5 * time.Second):
			}
		}
		if _, err = q.Order(ctx, u, drink, "medium", ""); err == nil {
			return nil
		}
		if !strings.Contains(err.Error(), "order form") {
			return err
		}
	}
	return fmt.Errorf("%s never got the order form: %w", u.Name, err)
}

func pollDB(ctx context.Context, wait time.Duration, what string, cond func() (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	for {
		ok, err := cond()
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			if err != nil {
				return fmt.Errorf("waited %s for %s: %w", wait, what, err)
			}
			return fmt.Errorf("waited %s for %s", wait, what)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// ---- dead letters ----------------------------------------------------------

type deadLetter struct {
	runID    string // CloudEvent subject
	function string // knativeerrordest
	code     string // knativeerrorcode
	typ      string
}

type deadLetters struct {
	cl     *kgo.Client
	cancel context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	all    []deadLetter
}

func watchDeadLetters(ctx context.Context, brokers []string) (*deadLetters, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(events.TopicDeadLetter),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	d := &deadLetters{cl: cl, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(d.done)
		for ctx.Err() == nil {
			d.cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
				x := deadLetter{code: "?"}
				if e, err := kafka.Event(r); err == nil {
					x.runID, x.typ = e.Subject(), e.Type()
					ext := e.Extensions()
					if v, ok := ext[events.ExtErrorCode]; ok {
						x.code, _ = types.Format(v)
					}
					if v, ok := ext[events.ExtErrorDest]; ok {
						x.function, _ = types.Format(v)
					}
				}
				d.mu.Lock()
				d.all = append(d.all, x)
				d.mu.Unlock()
			})
		}
	}()
	return d, nil
}

func (d *deadLetters) snapshot() []deadLetter {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]deadLetter(nil), d.all...)
}

func (d *deadLetters) close() { d.cancel(); <-d.done; d.cl.Close() }

// ---- measurement -----------------------------------------------------------

// message is one message the product meant to send, identified by its
// attempts' parameters (see matchRule).
type message struct {
	kind     string // run message, thread reply, DM, ephemeral
	channel  string
	key      string
	first    time.Time
	accepted []time.Time
	limited  int
}

const matchRule = `Matching rules. A message is identified by its calls' parameters: chat.postMessage by (channel, thread_ts, text), chat.postEphemeral by (channel, user, text); its first recorded call is the first attempt, its first 2xx call with "ok":true is the delivery. Kinds: a top-level post in a run's channel is the run message, a post with thread_ts a thread reply, a post to a D… channel a DM. Duplicates: two accepted calls with the same key, or two accepted DMs carrying the Mark complete button to one runner (each run has its own three users, so one DM channel per runner per run). Dead-lettered: a message never accepted whose run (channel, DM of a run's user) has a coffee.deadletter record with knativeerrorcode 429 and that run id as subject. Missing: never accepted and not dead-lettered, plus, per run, expected messages never attempted at all (run message, DM to the runner, 3 order confirmations, 2 thread replies: assignment and completion). chat.update refreshes and views.open are throttled too but are not messages; their 429s are reported below the table.`

type report struct {
	intended, within, later, deadLettered, missing, neverAttempted, duplicates, pending int
	byKind                                                                              map[string][4]int // within, later, dead-lettered, missing
	latencies                                                                           []time.Duration
	deadLetters                                                                         []deadLetter
	elapsed                                                                             time.Duration
}

func (r report) delivered() int { return r.within + r.later }

func measure(sl *slackstandin.Server, runs []*runResult, dls []deadLetter, within time.Duration) report {
	rep := report{byKind: map[string][4]int{}, deadLetters: dls}
	owner := map[string]*runResult{} // channel (run or DM) -> run
	for _, r := range runs {
		owner[r.channel] = r
		for _, u := range r.users {
			owner[sl.DMChannel(u.ID)] = r
		}
	}
	dlRuns := map[string]int{}
	for _, d := range dls {
		if d.code == "429" && d.runID != "" {
			dlRuns[d.runID]++
		}
	}
	msgs := map[string]*message{}
	var order []string
	completeDMs := map[string]map[string]bool{} // DM channel -> keys accepted with the button
	for _, c := range sl.Calls("") {
		var kind, key string
		ch := c.Params["channel"]
		switch c.Method {
		case "chat.postMessage":
			switch {
			case strings.HasPrefix(ch, "D"):
				kind = "DM"
			case c.Params["thread_ts"] != "":
				kind = "thread reply"
			default:
				kind = "run message"
			}
			key = strings.Join([]string{c.Method, ch, c.Params["thread_ts"], c.Params["text"]}, "\x00")
		case "chat.postEphemeral":
			kind = "ephemeral"
			key = strings.Join([]string{c.Method, ch, c.Params["user"], c.Params["text"]}, "\x00")
		default:
			continue
		}
		if owner[ch] == nil {
			continue
		}
		m := msgs[key]
		if m == nil {
			m = &message{kind: kind, channel: ch, key: key, first: c.At}
			msgs[key] = m
			order = append(order, key)
		}
		if c.Status/100 == 2 && strings.Contains(string(c.Response), `"ok":true`) {
			m.accepted = append(m.accepted, c.At)
			if kind == "DM" && strings.Contains(c.Params["blocks"], blocks.ActionComplete) {
				if completeDMs[ch] == nil {
					completeDMs[ch] = map[string]bool{}
				}
				completeDMs[ch][key] = true
			}
		} else if c.Status == 429 {
			m.limited++
		}
	}
	perRun := map[*runResult]map[string]int{}
	for _, k := range order {
		m := msgs[k]
		r := owner[m.channel]
		if perRun[r] == nil {
			perRun[r] = map[string]int{}
		}
		perRun[r][m.kind]++
		rep.intended++
		bk := rep.byKind[m.kind]
		r.mu.Lock()
		runID := r.runID
		r.mu.Unlock()
		switch {
		case len(m.accepted) > 0:
			lat := m.accepted[0].Sub(m.first)
			rep.latencies = append(rep.latencies, lat)
			if lat <= within {
				rep.within++
				bk[0]++
			} else {
				rep.later++
				bk[1]++
			}
			if len(m.accepted) > 1 {
				rep.duplicates += len(m.accepted) - 1
			}
		case runID != "" && dlRuns[runID] > 0:
			rep.deadLettered++
			bk[2]++
		default:
			rep.pending++
			rep.missing++
			bk[3]++
		}
		rep.byKind[m.kind] = bk
	}
	// Two different accepted DMs with the button to one runner: the same
	// key twice is already counted above.
	for _, keys := range completeDMs {
		if len(keys) > 1 {
			rep.duplicates += len(keys) - 1
		}
	}
	// Expected messages that were never attempted at all.
	for _, r := range runs {
		r.mu.Lock()
		runID, runner := r.runID, r.runner
		r.mu.Unlock()
		if runID != "" && dlRuns[runID] > 0 {
			continue // a dead letter may have stopped the run's later steps
		}
		got := perRun[r]
		want := map[string]int{"run message": 1, "DM": 1, "ephemeral": 3, "thread reply": 2}
		if runner == "" {
			want["DM"], want["thread reply"] = 0, 0
		}
		for k, n := range want {
			if got[k] < n {
				rep.neverAttempted += n - got[k]
			}
		}
	}
	rep.missing += rep.neverAttempted
	rep.pending += rep.neverAttempted
	sort.Slice(rep.latencies, func(i, j int) bool { return rep.latencies[i] < rep.latencies[j] })
	return rep
}

func pct(n, of int) string {
	if of == 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f %%", 100*float64(n)/float64(of))
}

func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	return ds[min(len(ds)-1, int(q*float64(len(ds))))]
}

func (rep report) print(w *os.File, cfg config, runs []*runResult, sl *slackstandin.Server) {
	total := rep.intended + rep.neverAttempted
	fmt.Fprintf(w, "\n### Sustained Slack rate limiting: %d concurrent runs\n\n", len(runs))
	fmt.Fprintf(w, "Limits: %d chat.postMessage/s per channel, %d other Web API calls/min (sliding windows). Elapsed: %s.\n\n",
		slackstandin.SlackRateLimits.PostMessagePerChannel, slackstandin.SlackRateLimits.OtherPerMinute, rep.elapsed.Round(time.Second))
	fmt.Fprintln(w, "| | messages | share |")
	fmt.Fprintln(w, "|---|---:|---:|")
	fmt.Fprintf(w, "| intended (attempted + never attempted) | %d | 100 %% |\n", total)
	fmt.Fprintf(w, "| **delivered within %s** (target ≥ 95 %%) | **%d** | **%s** |\n", cfg.within, rep.within, pct(rep.within, total))
	fmt.Fprintf(w, "| delivered later | %d | %s |\n", rep.later, pct(rep.later, total))
	fmt.Fprintf(w, "| dead-lettered (429) | %d | %s |\n", rep.deadLettered, pct(rep.deadLettered, total))
	fmt.Fprintf(w, "| missing (of which never attempted) | %d (%d) | %s |\n", rep.missing, rep.neverAttempted, pct(rep.missing, total))
	fmt.Fprintf(w, "| delivered or dead-lettered (target 100 %%) | %d | %s |\n", rep.delivered()+rep.deadLettered, pct(rep.delivered()+rep.deadLettered, total))
	fmt.Fprintf(w, "| duplicates (accepted twice; target 0) | %d | |\n\n", rep.duplicates)

	fmt.Fprintln(w, "| kind | within | later | dead-lettered | missing (attempted) |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|")
	kinds := []string{"run message", "thread reply", "DM", "ephemeral"}
	for _, k := range kinds {
		b := rep.byKind[k]
		fmt.Fprintf(w, "| %s | %d | %d | %d | %d |\n", k, b[0], b[1], b[2], b[3])
	}
	fmt.Fprintf(w, "\nFirst attempt → accepted: p50 %s, p95 %s, p99 %s, max %s.\n\n",
		quantile(rep.latencies, .50).Round(time.Millisecond), quantile(rep.latencies, .95).Round(time.Millisecond),
		quantile(rep.latencies, .99).Round(time.Millisecond), quantile(rep.latencies, 1).Round(time.Millisecond))

	// All Slack traffic, by method.
	type st struct{ ok, limited, other int }
	byMethod := map[string]*st{}
	for _, c := range sl.Calls("") {
		b := byMethod[c.Method]
		if b == nil {
			b = &st{}
			byMethod[c.Method] = b
		}
		switch {
		case c.Status == 429:
			b.limited++
		case c.Status/100 == 2:
			b.ok++
		default:
			b.other++
		}
	}
	methods := make([]string, 0, len(byMethod))
	for m := range byMethod {
		methods = append(methods, m)
	}
	sort.Strings(methods)
	fmt.Fprintln(w, "| Slack method | answered 2xx | answered 429 | other |")
	fmt.Fprintln(w, "|---|---:|---:|---:|")
	for _, m := range methods {
		b := byMethod[m]
		fmt.Fprintf(w, "| %s | %d | %d | %d |\n", m, b.ok, b.limited, b.other)
	}
	dlBy := map[string]int{}
	for _, d := range rep.deadLetters {
		dlBy[fmt.Sprintf("%s (%s, code %s)", d.function, d.typ, d.code)]++
	}
	fmt.Fprintf(w, "\nDead letters in %s: %d", events.TopicDeadLetter, len(rep.deadLetters))
	if len(dlBy) > 0 {
		keys := make([]string, 0, len(dlBy))
		for k := range dlBy {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, 0, len(keys))
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("%s × %d", k, dlBy[k]))
		}
		fmt.Fprintf(w, ": %s", strings.Join(parts, "; "))
	}
	fmt.Fprintln(w, ".")
	var failed []string
	var took []time.Duration
	for _, r := range runs {
		r.mu.Lock()
		if r.err != nil {
			failed = append(failed, fmt.Sprintf("%s: %v", r.channel, r.err))
		} else if r.done {
			took = append(took, r.took)
		}
		r.mu.Unlock()
	}
	sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
	fmt.Fprintf(w, "Scripts: %d of %d runs played to completion", len(took), len(runs))
	if len(took) > 0 {
		fmt.Fprintf(w, " (/coffee → run completed: median %s, max %s)", quantile(took, .5).Round(time.Second), took[len(took)-1].Round(time.Second))
	}
	fmt.Fprintln(w, ".")
	for _, f := range failed {
		fmt.Fprintf(w, "- %s\n", f)
	}
	fmt.Fprintf(w, "\n%s\n", matchRule)
}

// ---- helpers ---------------------------------------------------------------

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}
