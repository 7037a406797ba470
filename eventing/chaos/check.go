package chaos

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/coffeebuddy/coffeebuddy/eventing/devstack"
	"github.com/coffeebuddy/coffeebuddy/shared/audit"
	"github.com/coffeebuddy/coffeebuddy/shared/blocks"
	"github.com/coffeebuddy/coffeebuddy/shared/events"
	"github.com/coffeebuddy/coffeebuddy/shared/slackonce"
	"github.com/coffeebuddy/coffeebuddy/shared/slackstandin"
	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// brokenPrefix marks the deliberately broken records; the only dead letters
// the suite accepts carry it.
const brokenPrefix = "chaos-broken-"

// Report is the outcome: what was driven, what was found, and every broken
// guarantee as a Violation.
type Report struct {
	Phases []PhaseReport
	Broken []string // keys of the deliberately broken records

	Runs, RunsCompleted           int
	OrdersAccepted, OrdersStored  int
	HiddenResubmissions           int // order_updated rows: a submission the user saw fail that was in fact taken
	UnsureSubmissions             int // users who saw a submission fail at least once
	UpdatedByPhase                map[string]int
	AuditRows                     map[string]int
	RunMessages, AssignmentPosts  int
	RunnerDMs, CompletionPosts    int
	SlackCalls                    map[string]int // by method
	SlackFaults                   map[int]int    // calls the stand-in failed, by status
	CopiesSent                    int64
	Shuffled                      int64 // deliveries delayed at random (shuffled-delivery)
	OutboxUnpublished             int
	DeadLetters, DeadLettersOther int
	Violations                    []string
	Elapsed                       time.Duration
}

func (rep *Report) violate(format string, args ...any) {
	rep.Violations = append(rep.Violations, fmt.Sprintf(format, args...))
}

// sendBroken produces cfg.Broken records no function can use: half are
// CloudEvents whose data is not JSON (order-place rejects them, 4xx), half
// are not CloudEvents at all (the quarantine function parks them).
func (c *suite) sendBroken(ctx context.Context) ([]string, error) {
	if c.cfg.Broken == 0 {
		return nil, nil
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.st.Brokers...))
	if err != nil {
		return nil, fmt.Errorf("chaos: %w", err)
	}
	defer cl.Close()
	var keys []string
	var recs []*kgo.Record
	for i := range c.cfg.Broken {
		key := fmt.Sprintf("%s%d", brokenPrefix, i)
		keys = append(keys, key)
		r := &kgo.Record{Topic: events.TopicSlackEvents, Key: []byte(key)}
		if i%2 == 0 {
			r.Value = []byte(`{"drink": "latte", "size": `) // cut short
			r.Headers = []kgo.RecordHeader{
				{Key: "ce_specversion", Value: []byte("1.0")}, {Key: "ce_id", Value: []byte(key)},
				{Key: "ce_source", Value: []byte("/chaos")}, {Key: "ce_type", Value: []byte(events.TypeOrderSubmitted)},
				{Key: "content-type", Value: []byte("application/json")},
			}
		} else {
			r.Value = []byte("not a CloudEvent: " + key)
		}
		recs = append(recs, r)
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return nil, fmt.Errorf("chaos: produce broken records: %w", err)
	}
	c.logf("sent %d deliberately broken records", len(recs))
	return keys, nil
}

// settle waits until the outbox is empty and every consumer group has
// consumed everything, and Slack has been quiet for a few seconds: the
// state the checks read is then final.
func (c *suite) settle(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Settle)
	defer cancel()
	c.logf("settling: outbox, consumer lag, Slack quiet")
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.st.Brokers...))
	if err != nil {
		return fmt.Errorf("chaos: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	lastCalls, quietSince := -1, time.Now()
	for {
		// The sweeper's tick normally comes each minute; fire it now.
		_ = c.st.Eventing().FirePing(ctx, "outbox-sweep-tick")
		var unpublished int
		err := c.db.QueryRow(ctx, `SELECT count(*) FROM outbox WHERE published_at IS NULL`).Scan(&unpublished)
		lag, lerr := totalLag(ctx, adm)
		calls := c.st.Slack.CallCount()
		if calls != lastCalls {
			lastCalls, quietSince = calls, time.Now()
		}
		if err == nil && lerr == nil && unpublished == 0 && lag == 0 && time.Since(quietSince) > 5*time.Second {
			c.logf("settled")
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("chaos: did not settle in %s (unpublished %d, lag %d, db %v, kafka %v)", c.cfg.Settle, unpublished, lag, err, lerr)
		}
		sleep(ctx, time.Second)
	}
}

func totalLag(ctx context.Context, adm *kadm.Client) (int64, error) {
	groups, err := adm.ListGroups(ctx)
	if err != nil {
		return 0, err
	}
	lags, err := adm.Lag(ctx, groups.Groups()...)
	if err != nil {
		return 0, err
	}
	var total int64
	for _, l := range lags {
		if l.Error() != nil {
			return 0, l.Error()
		}
		total += l.Lag.Total()
	}
	return total, nil
}

// check compares what was accepted with what the database and Slack hold.
func (c *suite) check(ctx context.Context, rep *Report) error {
	runIDs := make([]string, 0, len(c.runs))
	byID := map[string]*run{}
	for _, r := range c.runs {
		rep.Runs++
		if r.completedSeen {
			rep.RunsCompleted++
		} else {
			rep.violate("run in %s (%s) did not complete: %v", r.channel, r.phase, r.err)
		}
		rep.OrdersAccepted += len(r.accepted)
		rep.UnsureSubmissions += len(r.unsure)
		if r.runID != "" {
			runIDs = append(runIDs, r.runID)
			byID[r.runID] = r
		}
	}
	if err := c.checkDB(ctx, rep, runIDs, byID); err != nil {
		return err
	}
	c.checkSlack(rep)
	if err := c.checkDeadLetters(ctx, rep); err != nil {
		return err
	}
	rep.CopiesSent = c.st.Eventing().CopiesSent()
	rep.Shuffled = c.st.Eventing().Shuffled()
	return nil
}

func (c *suite) checkDB(ctx context.Context, rep *Report, runIDs []string, byID map[string]*run) error {
	// Runs: one per channel, each completed.
	var runsInChannels int
	if err := c.db.QueryRow(ctx, `SELECT count(*) FROM coffee_runs WHERE channel_id LIKE 'C0CHAOS%'`).Scan(&runsInChannels); err != nil {
		return fmt.Errorf("chaos: %w", err)
	}
	if runsInChannels != len(c.runs) {
		rep.violate("%d runs in the chaos channels, want %d (one per /coffee channel)", runsInChannels, len(c.runs))
	}
	rows, err := c.db.Query(ctx, `SELECT id::text, status FROM coffee_runs WHERE id::text = ANY($1)`, runIDs)
	if err != nil {
		return fmt.Errorf("chaos: %w", err)
	}
	for rows.Next() {
		var id, status string
		if err := rows.Scan(&id, &status); err != nil {
			return fmt.Errorf("chaos: %w", err)
		}
		if status != "completed" {
			rep.violate("run %s in %s is %s, want completed", id, byID[id].channel, status)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("chaos: %w", err)
	}

	// Orders: every accepted order stored once, as typed.
	stored := map[string]map[string]order{}
	rows, err = c.db.Query(ctx, `SELECT run_id::text, user_id, drink, size, coalesce(customizations, '') FROM orders WHERE run_id::text = ANY($1)`, runIDs)
	if err != nil {
		return fmt.Errorf("chaos: %w", err)
	}
	for rows.Next() {
		var id, user string
		var o order
		if err := rows.Scan(&id, &user, &o.drink, &o.size, &o.custom); err != nil {
			return fmt.Errorf("chaos: %w", err)
		}
		if stored[id] == nil {
			stored[id] = map[string]order{}
		}
		if _, dup := stored[id][user]; dup {
			rep.violate("run %s has two orders by %s", id, user)
		}
		stored[id][user] = o
		rep.OrdersStored++
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("chaos: %w", err)
	}
	wantPrefs := map[[3]string]int{}
	for _, r := range c.runs {
		for user, o := range r.accepted {
			wantPrefs[[3]string{user, o.drink, o.size}]++
			got, ok := stored[r.runID][user]
			switch {
			case !ok:
				rep.violate("accepted order of %s in %s (%s) is not stored", user, r.channel, r.phase)
			case got != o:
				rep.violate("order of %s in %s stored as %+v, typed %+v", user, r.channel, got, o)
			}
		}
		for user := range stored[r.runID] {
			if _, ok := r.accepted[user]; !ok {
				rep.violate("order of %s in %s is stored but was never accepted", user, r.channel)
			}
		}
	}

	// Preferences count each order once.
	gotPrefs := map[[3]string]int{}
	rows, err = c.db.Query(ctx, `SELECT user_id, drink, size, order_count FROM user_preferences WHERE user_id LIKE 'U0CH%' AND order_count > 0`)
	if err != nil {
		return fmt.Errorf("chaos: %w", err)
	}
	for rows.Next() {
		var k [3]string
		var n int
		if err := rows.Scan(&k[0], &k[1], &k[2], &n); err != nil {
			return fmt.Errorf("chaos: %w", err)
		}
		gotPrefs[k] = n
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("chaos: %w", err)
	}
	for _, k := range sortedKeys(wantPrefs, gotPrefs) {
		if wantPrefs[k] != gotPrefs[k] {
			rep.violate("preferences of %s for %s %s count %d, want %d", k[0], k[2], k[1], gotPrefs[k], wantPrefs[k])
		}
	}

	// Audit: one row per state change. A state change is identified by the
	// event that caused it, so two rows with the same run, type and event
	// id are a change done twice; the once-per-run changes must appear
	// exactly once, and order_placed once per stored order.
	rep.AuditRows, rep.UpdatedByPhase = map[string]int{}, map[string]int{}
	perRun := map[string]map[string]int{}
	rows, err = c.db.Query(ctx, `SELECT run_id::text, event_type, coalesce(ce_id, ''), coalesce(actor_user_id, ''), count(*) FROM audit_logs
		WHERE run_id::text = ANY($1) GROUP BY 1, 2, 3, 4`, runIDs)
	if err != nil {
		return fmt.Errorf("chaos: %w", err)
	}
	for rows.Next() {
		var id, typ, ce, actor string
		var n int
		if err := rows.Scan(&id, &typ, &ce, &actor, &n); err != nil {
			return fmt.Errorf("chaos: %w", err)
		}
		if n > 1 {
			rep.violate("run %s: %d %s audit rows for the one event %s", id, n, typ, ce)
		}
		// An edit nobody made: only a user whose submission failed for
		// them (and was in fact taken) can have a second one.
		if typ == audit.OrderUpdated {
			if !byID[id].unsure[actor] {
				rep.violate("run %s (%s): order_updated for %s, whose every submission was answered", id, byID[id].channel, actor)
			}
			rep.UpdatedByPhase[byID[id].phase] += n
		}
		rep.AuditRows[typ] += n
		if perRun[id] == nil {
			perRun[id] = map[string]int{}
		}
		perRun[id][typ] += n
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("chaos: %w", err)
	}
	once := []string{audit.RunCreated, audit.RunAnnounced, audit.RunClosed, audit.RunnerDMed, audit.RunCompleted}
	for _, id := range runIDs {
		for _, typ := range once {
			if n := perRun[id][typ]; n != 1 {
				rep.violate("run %s (%s): %d %s audit rows, want 1", id, byID[id].channel, n, typ)
			}
		}
		if n, want := perRun[id][audit.OrderPlaced], len(stored[id]); n != want {
			rep.violate("run %s: %d order_placed audit rows for %d orders", id, n, want)
		}
		for typ, n := range perRun[id] {
			if !slices.Contains(once, typ) && typ != audit.OrderPlaced && typ != audit.OrderUpdated {
				rep.violate("run %s: %d unexpected %s audit rows", id, n, typ)
			}
		}
	}
	rep.HiddenResubmissions = rep.AuditRows[audit.OrderUpdated]

	if err := c.db.QueryRow(ctx, `SELECT count(*) FROM outbox WHERE published_at IS NULL`).Scan(&rep.OutboxUnpublished); err != nil {
		return fmt.Errorf("chaos: %w", err)
	}
	if rep.OutboxUnpublished != 0 {
		rep.violate("%d outbox rows never published", rep.OutboxUnpublished)
	}
	return nil
}

// checkSlack counts, per run, the messages the stand-in holds: one run
// message, one assignment reply, one runner DM, one completion reply.
func (c *suite) checkSlack(rep *Report) {
	sl := c.st.Slack
	for _, r := range c.runs {
		var top, assignment, completion, other int
		for _, m := range posted(sl.Messages(r.channel)) {
			switch {
			case m.ThreadTS == "":
				top++
			case m.ThreadTS != r.runTS:
				other++
			case isCompletion(m):
				completion++
			case isAssignment(m):
				assignment++
			default:
				other++
			}
		}
		// The runner's DM, found by its slackonce key (its button is gone
		// once the run is complete: the DM is updated to say so).
		dms, live := 0, 0
		for _, u := range r.users {
			for _, m := range posted(sl.Messages(sl.DMChannel(u.ID))) {
				if runnerDM(m, r.runID) {
					dms++
					if devstack.ButtonValue(m.Blocks, blocks.ActionComplete) != "" {
						live++
					}
				}
			}
		}
		if live != 0 {
			rep.violate("%s (%s): the runner's DM still offers Mark complete after completion", r.channel, r.phase)
		}
		rep.RunMessages += top
		rep.AssignmentPosts += assignment
		rep.CompletionPosts += completion
		rep.RunnerDMs += dms
		for what, n := range map[string]int{"run message": top, "assignment reply": assignment, "runner DM": dms, "completion reply": completion} {
			if n != 1 {
				rep.violate("%s (%s): %d %ss, want 1", r.channel, r.phase, n, what)
			}
		}
		if other != 0 {
			rep.violate("%s: %d unexpected messages", r.channel, other)
		}
	}
	rep.SlackCalls, rep.SlackFaults = map[string]int{}, map[int]int{}
	for _, call := range sl.Calls("") {
		rep.SlackCalls[call.Method]++
		if call.Status >= 400 {
			rep.SlackFaults[call.Status]++
		}
	}
}

// posted keeps the messages the bot posted with chat.postMessage (not
// ephemerals, command answers or response_url replies).
func posted(msgs []slackstandin.Message) []slackstandin.Message {
	var out []slackstandin.Message
	for _, m := range msgs {
		if !m.Ephemeral && m.Via == "chat.postMessage" {
			out = append(out, m)
		}
	}
	return out
}

// runnerDM reports whether m is the assignment DM of run runID.
func runnerDM(m slackstandin.Message, runID string) bool {
	id, err := uuid.Parse(runID)
	return err == nil && strings.Contains(string(m.Metadata), `"`+slackonce.RunnerDMKey(id)+`"`)
}

func isCompletion(m slackstandin.Message) bool {
	return strings.Contains(m.Text+string(m.Blocks), "Coffee's here")
}

func isAssignment(m slackstandin.Message) bool {
	s := m.Text + string(m.Blocks)
	return strings.Contains(s, "is going this time") || strings.Contains(s, "volunteered to go")
}

// completionReplies are the completion posts in r's thread.
func completionReplies(sl *slackstandin.Server, r *run) []slackstandin.Message {
	var out []slackstandin.Message
	for _, m := range posted(sl.Thread(r.channel, r.runTS)) {
		if isCompletion(m) {
			out = append(out, m)
		}
	}
	return out
}

// checkDeadLetters reads the whole dead-letter topic: it must hold each
// broken record once and nothing else.
func (c *suite) checkDeadLetters(ctx context.Context, rep *Report) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.st.Brokers...), kgo.ConsumeTopics(events.TopicDeadLetter),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return fmt.Errorf("chaos: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ends, err := adm.ListEndOffsets(ctx, events.TopicDeadLetter)
	if err != nil {
		return fmt.Errorf("chaos: dead-letter end offsets: %w", err)
	}
	var want int64
	ends.Each(func(o kadm.ListedOffset) { want += o.Offset })
	seen := map[string]int{}
	var read int64
	fctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for read < want && fctx.Err() == nil {
		fs := cl.PollFetches(fctx)
		fs.EachRecord(func(r *kgo.Record) {
			read++
			rep.DeadLetters++
			if key := brokenKey(r); key != "" {
				seen[key]++
				return
			}
			rep.DeadLettersOther++
			rep.violate("unexpected dead letter: key %q, %s", r.Key, headerSummary(r))
		})
	}
	if read < want {
		return fmt.Errorf("chaos: read %d of %d dead letters", read, want)
	}
	for _, k := range rep.Broken {
		if seen[k] != 1 {
			rep.violate("broken record %s dead-lettered %d times, want 1", k, seen[k])
		}
	}
	return nil
}

// brokenKey finds the broken-record marker in a dead letter's key or
// headers (the quarantine function re-wraps raw records).
func brokenKey(r *kgo.Record) string {
	if k := string(r.Key); strings.HasPrefix(k, brokenPrefix) {
		return k
	}
	for _, h := range r.Headers {
		if v := string(h.Value); strings.HasPrefix(v, brokenPrefix) {
			return v
		}
	}
	return ""
}

func headerSummary(r *kgo.Record) string {
	var parts []string
	for _, h := range r.Headers {
		if strings.HasPrefix(h.Key, "ce_type") || strings.HasPrefix(h.Key, "ce_knativeerror") || strings.HasPrefix(h.Key, "ce_coffeebuddy") {
			v := string(h.Value)
			if len(v) > 120 {
				v = v[:120]
			}
			parts = append(parts, h.Key+"="+v)
		}
	}
	return strings.Join(parts, " ")
}

func sortedKeys[V any](ms ...map[[3]string]V) [][3]string {
	set := map[[3]string]bool{}
	for _, m := range ms {
		for k := range m {
			set[k] = true
		}
	}
	keys := slices.Collect(maps.Keys(set))
	sort.Slice(keys, func(i, j int) bool { return strings.Join(keys[i][:], "/") < strings.Join(keys[j][:], "/") })
	return keys
}

// Print writes the counts and the verdict.
func (rep *Report) Print(w io.Writer) {
	fmt.Fprintf(w, "\nchaos: %d runs, %d orders accepted, in %s\n\n", rep.Runs, rep.OrdersAccepted, rep.Elapsed.Round(time.Second))
	fmt.Fprintf(w, "| phase | fault | runs completed | orders accepted | repeated user actions | order_updated | took |\n|---|---|---|---|---|---|---|\n")
	for _, p := range rep.Phases {
		fmt.Fprintf(w, "| %s | %s | %d/%d | %d | %d | %d | %s |\n", p.Name, p.Fault, p.Completed, p.Runs, p.Accepted, p.Retries, rep.UpdatedByPhase[p.Name], p.Elapsed.Round(time.Second))
	}
	fmt.Fprintf(w, "\n| check | found | want |\n|---|---|---|\n")
	row := func(what string, got, want any) { fmt.Fprintf(w, "| %s | %v | %v |\n", what, got, want) }
	row("runs completed", rep.RunsCompleted, rep.Runs)
	row("orders stored (accepted orders, each once)", rep.OrdersStored, rep.OrdersAccepted)
	row("order_placed audit rows", rep.AuditRows[audit.OrderPlaced], rep.OrdersStored)
	for _, typ := range []string{audit.RunCreated, audit.RunAnnounced, audit.RunClosed, audit.RunnerDMed, audit.RunCompleted} {
		row(typ+" audit rows", rep.AuditRows[typ], rep.Runs)
	}
	row("order_updated audit rows (a submission seen to fail that was taken)", rep.HiddenResubmissions,
		fmt.Sprintf("≤ %d (users who saw a submission fail), each once per event", rep.UnsureSubmissions))
	row("run messages posted", rep.RunMessages, rep.Runs)
	row("assignment replies", rep.AssignmentPosts, rep.Runs)
	row("runner DMs", rep.RunnerDMs, rep.Runs)
	row("completion replies", rep.CompletionPosts, rep.Runs)
	row("outbox rows unpublished", rep.OutboxUnpublished, 0)
	row("dead letters (deliberately broken)", rep.DeadLetters-rep.DeadLettersOther, len(rep.Broken))
	row("dead letters (anything else)", rep.DeadLettersOther, 0)
	fmt.Fprintf(w, "\nSlack faults injected: %v; deliveries duplicated by the stand-in: %d; shuffled: %d\n", rep.SlackFaults, rep.CopiesSent, rep.Shuffled)
	methods := slices.Sorted(maps.Keys(rep.SlackCalls))
	fmt.Fprintf(w, "Slack calls:")
	for _, m := range methods {
		fmt.Fprintf(w, " %s %d;", m, rep.SlackCalls[m])
	}
	fmt.Fprintln(w)
	if len(rep.Violations) == 0 {
		fmt.Fprintf(w, "\nPASS: nothing lost, nothing done twice\n")
		return
	}
	fmt.Fprintf(w, "\nFAIL: %d violations\n", len(rep.Violations))
	for _, v := range rep.Violations {
		fmt.Fprintf(w, "  - %s\n", v)
	}
}
