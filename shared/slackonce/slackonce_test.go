package slackonce_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/slack-go/slack"

	"github.com/coffeebuddy/coffeebuddy/shared/blocks"
	"github.com/coffeebuddy/coffeebuddy/shared/functest"
	"github.com/coffeebuddy/coffeebuddy/shared/postgres/pgtest"
	"github.com/coffeebuddy/coffeebuddy/shared/slackapi"
	"github.com/coffeebuddy/coffeebuddy/shared/slackonce"
	"github.com/coffeebuddy/coffeebuddy/shared/slackstandin"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const lease = 30 * time.Second

var msg = blocks.Message{Text: "Coffee's here!"}

type rig struct {
	t       *testing.T
	db      *pgtest.DB
	slack   *slackstandin.Server
	clients *slackapi.Clients
	p       *slackonce.Poster
}

func newRig(t *testing.T) *rig {
	t.Helper()
	db := pgtest.New(t)
	sl, clients := functest.Slack(t)
	return &rig{t: t, db: db, slack: sl, clients: clients,
		p: &slackonce.Poster{DB: db.Pool, Slack: clients, Lease: lease}}
}

// claim is a slack_posts row.
type claim struct {
	Channel, ThreadTS string
	ClaimedAt         time.Time
	Uncertain         bool
	TS                *string
}

// row returns key's slack_posts row; ok is false when there is none.
func (r *rig) row(key string) (claim, bool) {
	r.t.Helper()
	var c claim
	err := r.db.Pool.QueryRow(context.Background(), `SELECT channel_id, thread_ts, claimed_at, uncertain, ts FROM slack_posts WHERE dedup_key = $1`, key).
		Scan(&c.Channel, &c.ThreadTS, &c.ClaimedAt, &c.Uncertain, &c.TS)
	if errors.Is(err, pgx.ErrNoRows) {
		return c, false
	}
	if err != nil {
		r.t.Fatal(err)
	}
	return c, true
}

// leave writes the claim an attempt leaves behind when it dies before
// recording the outcome of its post.
func (r *rig) leave(key, channel, threadTS string, claimedAt, firstClaimedAt time.Time, uncertain bool) {
	r.t.Helper()
	if _, err := r.db.Pool.Exec(context.Background(), `
		INSERT INTO slack_posts (dedup_key, channel_id, thread_ts, claimed_at, first_claimed_at, uncertain)
		VALUES ($1, $2, $3, $4, $5, $6)`, key, channel, threadTS, claimedAt, firstClaimedAt, uncertain); err != nil {
		r.t.Fatal(err)
	}
}

// postRaw posts as an attempt under key would, straight to Slack.
func (r *rig) postRaw(channel, threadTS, key, text string) string {
	r.t.Helper()
	cli, err := r.clients.Get()
	if err != nil {
		r.t.Fatal(err)
	}
	opts := []slack.MsgOption{slack.MsgOptionText(text, false)}
	if key != "" {
		opts = append(opts, slack.MsgOptionMetadata(slack.SlackMetadata{EventType: slackonce.EventType, EventPayload: map[string]any{"key": key}}))
	}
	if threadTS != "" {
		opts = append(opts, slack.MsgOptionTS(threadTS))
	}
	_, ts, err := cli.PostMessage(channel, opts...)
	if err != nil {
		r.t.Fatal(err)
	}
	return ts
}

func (r *rig) posts() int { return len(r.slack.Calls("chat.postMessage")) }

func metadataKey(t *testing.T, m slackstandin.Message) string {
	t.Helper()
	var md slack.SlackMetadata
	if err := json.Unmarshal(m.Metadata, &md); err != nil {
		t.Fatalf("metadata %s: %v", m.Metadata, err)
	}
	if md.EventType != slackonce.EventType {
		t.Fatalf("metadata event_type = %q", md.EventType)
	}
	k, _ := md.EventPayload["key"].(string)
	return k
}

func TestPostsOnceAndRemembers(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	ctx := context.Background()
	ts, posted, err := r.p.Post(ctx, "completion:r1", "C1", "", msg)
	if err != nil || !posted || ts == "" {
		t.Fatalf("Post = %q, %v, %v; want a ts, posted", ts, posted, err)
	}
	msgs := r.slack.Messages("C1")
	if len(msgs) != 1 || msgs[0].TS != ts || msgs[0].Text != msg.Text || metadataKey(t, msgs[0]) != "completion:r1" {
		t.Fatalf("messages = %+v", msgs)
	}
	if c, ok := r.row("completion:r1"); !ok || c.TS == nil || *c.TS != ts || c.Uncertain || c.Channel != "C1" {
		t.Fatalf("row = %+v, %v", c, ok)
	}
	calls := len(r.slack.Calls(""))
	again, posted, err := r.p.Post(ctx, "completion:r1", "C1", "", msg)
	if err != nil || posted || again != ts {
		t.Fatalf("second Post = %q, %v, %v; want %q, not posted", again, posted, err, ts)
	}
	if n := len(r.slack.Calls("")); n != calls {
		t.Fatalf("the second Post called Slack %d times", n-calls)
	}
	// Another key is another message.
	if _, posted, err := r.p.Post(ctx, "completion:r2", "C1", "", msg); err != nil || !posted {
		t.Fatalf("other key: posted %v, %v", posted, err)
	}
	if n := r.posts(); n != 2 {
		t.Fatalf("%d chat.postMessage calls, want 2", n)
	}
}

func TestThreadAndTopLevel(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	ctx := context.Background()
	parent := r.postRaw("C1", "", "", "Coffee run")
	reply, _, err := r.p.Post(ctx, "assignment:r1", "C1", parent, msg)
	if err != nil {
		t.Fatal(err)
	}
	top, _, err := r.p.Post(ctx, "run-message:r1", "C1", "", msg)
	if err != nil {
		t.Fatal(err)
	}
	thread := r.slack.Thread("C1", parent)
	if len(thread) != 1 || thread[0].TS != reply || thread[0].ThreadTS != parent {
		t.Fatalf("thread = %+v, want the reply %s", thread, reply)
	}
	for _, m := range r.slack.Messages("C1") {
		if m.TS == top && m.ThreadTS != "" {
			t.Fatalf("top-level post landed in thread %s", m.ThreadTS)
		}
	}
	if c, _ := r.row("assignment:r1"); c.ThreadTS != parent {
		t.Fatalf("thread_ts recorded = %q, want %q", c.ThreadTS, parent)
	}
}

// The crash: Slack took the post, the attempt died before recording it.
// Once the lease is over, the next attempt finds the message by its
// metadata and posts nothing.
func TestCrashAfterSlackAcceptedRecoversTheTS(t *testing.T) {
	t.Parallel()
	for _, thread := range []bool{false, true} {
		name := map[bool]string{false: "top level", true: "thread"}[thread]
		t.Run(name, func(t *testing.T) {
			r := newRig(t)
			ctx := context.Background()
			parent, method := "", "conversations.history"
			if thread {
				parent, method = r.postRaw("C1", "", "", "Coffee run"), "conversations.replies"
			}
			claimedAt := time.Now().Add(-2 * lease)
			r.leave("k", "C1", parent, claimedAt, claimedAt, false)
			r.postRaw("C1", parent, "k-other", "someone else's")
			want := r.postRaw("C1", parent, "k", "the lost post")
			r.postRaw("C1", parent, "", "a plain message")
			before := r.posts()

			ts, posted, err := r.p.Post(ctx, "k", "C1", parent, msg)
			if err != nil || posted || ts != want {
				t.Fatalf("Post = %q, %v, %v; want %q found, not posted", ts, posted, err, want)
			}
			if n := r.posts() - before; n != 0 {
				t.Fatalf("%d new posts", n)
			}
			if n := len(r.slack.Calls(method)); n != 1 {
				t.Fatalf("%d %s calls, want 1", n, method)
			}
			if c, _ := r.row("k"); c.TS == nil || *c.TS != want {
				t.Fatalf("row = %+v, want ts %s", c, want)
			}
		})
	}
}

// An attempt that took over an abandoned claim and died itself moved
// claimed_at on; the next one still searches from the first claim.
func TestReconcileSearchesFromTheFirstClaim(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	real := time.Now()
	want := r.postRaw("C1", "", "k", "posted by the first attempt")
	// The second attempt claimed 5 minutes after that post and died; now
	// it is 10 minutes later.
	r.leave("k", "C1", "", real.Add(5*time.Minute), real.Add(-time.Second), false)
	r.p.Now = func() time.Time { return real.Add(10 * time.Minute) }
	ts, posted, err := r.p.Post(context.Background(), "k", "C1", "", msg)
	if err != nil || posted || ts != want {
		t.Fatalf("Post = %q, %v, %v; want %q found", ts, posted, err, want)
	}
	if n := r.posts(); n != 1 {
		t.Fatalf("%d posts, want 1", n)
	}
}

func TestUncertainWithNothingInSlackPosts(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	now := time.Now()
	r.leave("k", "C1", "", now, now, true) // fresh, but its outcome unknown
	ts, posted, err := r.p.Post(context.Background(), "k", "C1", "", msg)
	if err != nil || !posted || ts == "" {
		t.Fatalf("Post = %q, %v, %v; want posted", ts, posted, err)
	}
	if n := len(r.slack.Calls("conversations.history")); n != 1 {
		t.Fatalf("%d conversations.history calls, want 1 (reconcile before posting)", n)
	}
	if msgs := r.slack.Messages("C1"); len(msgs) != 1 || msgs[0].TS != ts {
		t.Fatalf("messages = %+v", msgs)
	}
	if c, _ := r.row("k"); c.Uncertain || c.TS == nil {
		t.Fatalf("row = %+v", c)
	}
}

func TestClaimInFlight(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	now := time.Now()
	r.leave("k", "C1", "", now.Add(-lease/2), now.Add(-lease/2), false)
	_, _, err := r.p.Post(context.Background(), "k", "C1", "", msg)
	if !errors.Is(err, slackonce.ErrInFlight) {
		t.Fatalf("Post = %v, want ErrInFlight", err)
	}
	if n := len(r.slack.Calls("")); n != 0 {
		t.Fatalf("%d Slack calls while another attempt is posting", n)
	}
}

// A failed post: when Slack certainly did not take it, the claim goes, so
// the retry posts at once; when the outcome is unknown, the claim says so,
// and the retry asks Slack first.
func TestFailedPost(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		status     int
		check      func(error) bool
		kept       bool
		reconciles int
	}{
		{"rate limited", http.StatusTooManyRequests, func(err error) bool {
			var rl *slack.RateLimitedError
			return errors.As(err, &rl) && rl.RetryAfter == 2*time.Second
		}, false, 0},
		{"error answer", http.StatusOK, func(err error) bool {
			var answer slack.SlackErrorResponse
			return errors.As(err, &answer) && answer.Err == "fault_injected"
		}, false, 0},
		{"server error", http.StatusInternalServerError, func(err error) bool {
			var status slack.StatusCodeError
			return errors.As(err, &status) && status.Code == 500
		}, true, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t)
			ctx := context.Background()
			r.slack.SetFault("chat.postMessage", slackstandin.FailN(1, tt.status, 2*time.Second))
			_, _, err := r.p.Post(ctx, "k", "C1", "", msg)
			if err == nil || !tt.check(err) {
				t.Fatalf("Post = %v", err)
			}
			c, kept := r.row("k")
			if kept != tt.kept || (kept && (!c.Uncertain || c.TS != nil)) {
				t.Fatalf("claim kept %v (%+v), want kept %v and uncertain", kept, c, tt.kept)
			}
			ts, posted, err := r.p.Post(ctx, "k", "C1", "", msg)
			if err != nil || !posted {
				t.Fatalf("retry = %q, %v, %v; want posted", ts, posted, err)
			}
			if n := len(r.slack.Calls("conversations.history")); n != tt.reconciles {
				t.Fatalf("%d reconciliations, want %d", n, tt.reconciles)
			}
			if msgs := r.slack.Messages("C1"); len(msgs) != 1 {
				t.Fatalf("%d messages, want 1", len(msgs))
			}
		})
	}
}

// A reconciliation Slack rate limits is retried as such, and the claim
// stays "ask first".
func TestReconcileRateLimited(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	now := time.Now()
	r.leave("k", "C1", "", now, now, true)
	r.slack.SetFault("conversations.history", slackstandin.FailN(1, http.StatusTooManyRequests, time.Second))
	_, _, err := r.p.Post(context.Background(), "k", "C1", "", msg)
	var rl *slack.RateLimitedError
	if !errors.As(err, &rl) {
		t.Fatalf("Post = %v, want a RateLimitedError", err)
	}
	if c, _ := r.row("k"); !c.Uncertain {
		t.Fatalf("claim = %+v, want uncertain", c)
	}
	if n := r.posts(); n != 0 {
		t.Fatalf("%d posts without a reconciliation", n)
	}
	if _, posted, err := r.p.Post(context.Background(), "k", "C1", "", msg); err != nil || !posted {
		t.Fatalf("retry: posted %v, %v", posted, err)
	}
}

// Concurrent deliveries of one event: one posts, the others are told to
// come back (or find it posted). Also when they race to take over an
// abandoned claim.
func TestConcurrentPostsOnce(t *testing.T) {
	t.Parallel()
	for _, abandoned := range []bool{false, true} {
		name := map[bool]string{false: "fresh key", true: "abandoned claim"}[abandoned]
		t.Run(name, func(t *testing.T) {
			r := newRig(t)
			if abandoned {
				old := time.Now().Add(-2 * lease)
				r.leave("k", "C1", "", old, old, false)
			}
			var wg sync.WaitGroup
			tss := make([]string, 10)
			errs := make([]error, 10)
			for i := range 10 {
				wg.Go(func() { tss[i], _, errs[i] = r.p.Post(context.Background(), "k", "C1", "", msg) })
			}
			wg.Wait()
			if n := r.posts(); n != 1 {
				t.Fatalf("%d chat.postMessage calls, want 1", n)
			}
			posted := r.slack.Messages("C1")[0].TS
			for i, err := range errs {
				if err != nil && !errors.Is(err, slackonce.ErrInFlight) {
					t.Errorf("goroutine %d: %v", i, err)
				}
				if err == nil && tss[i] != posted {
					t.Errorf("goroutine %d: ts %q, want %q", i, tss[i], posted)
				}
			}
			ts, again, err := r.p.Post(context.Background(), "k", "C1", "", msg)
			if err != nil || again || ts != posted {
				t.Fatalf("after the race: %q, %v, %v", ts, again, err)
			}
		})
	}
}

func TestDM(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	ctx := context.Background()
	ch, ts, posted, err := r.p.DM(ctx, "runner-dm:r1", "U7", msg)
	if err != nil || !posted || ch != r.slack.DMChannel("U7") {
		t.Fatalf("DM = %q, %q, %v, %v", ch, ts, posted, err)
	}
	dms := r.slack.Messages(ch)
	if len(dms) != 1 || dms[0].TS != ts || metadataKey(t, dms[0]) != "runner-dm:r1" {
		t.Fatalf("DMs = %+v", dms)
	}
	calls := len(r.slack.Calls(""))
	ch2, ts2, posted, err := r.p.DM(ctx, "runner-dm:r1", "U7", msg)
	if err != nil || posted || ch2 != ch || ts2 != ts {
		t.Fatalf("second DM = %q, %q, %v, %v", ch2, ts2, posted, err)
	}
	if n := len(r.slack.Calls("")); n != calls {
		t.Fatalf("the second DM called Slack %d times", n-calls)
	}
	// A DM whose record was lost in a crash is found in the DM's history.
	if _, err := r.db.Pool.Exec(ctx, `UPDATE slack_posts SET ts = NULL, posted_at = NULL, uncertain = true`); err != nil {
		t.Fatal(err)
	}
	_, ts3, posted, err := r.p.DM(ctx, "runner-dm:r1", "U7", msg)
	if err != nil || posted || ts3 != ts {
		t.Fatalf("DM after a crash = %q, %v, %v; want %q found", ts3, posted, err, ts)
	}
	if n := len(r.slack.Messages(ch)); n != 1 {
		t.Fatalf("%d DMs, want 1", n)
	}
}

// ErrInFlight is "busy" to the runtime (function.IsBusy: 409, logged at
// info), without slackonce importing the runtime.
func TestErrInFlightIsBusy(t *testing.T) {
	var b interface{ Busy() bool }
	if !errors.As(fmt.Errorf("wrapped: %w", slackonce.ErrInFlight), &b) || !b.Busy() {
		t.Fatal("a wrapped ErrInFlight is not busy")
	}
}
