// Package slackoncetest sets up, for handler tests, what a crash leaves
// behind: a message posted under a dedup key by an attempt that died before
// its caller committed.
package slackoncetest

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/coffeebuddy/coffeebuddy/shared/blocks"
	"github.com/coffeebuddy/coffeebuddy/shared/slackapi"
	"github.com/coffeebuddy/coffeebuddy/shared/slackonce"
)

// Crash is when the attempt died.
type Crash int

const (
	// AfterRecord: slackonce recorded the post's ts; the caller's own
	// commit never happened.
	AfterRecord Crash = iota
	// BeforeRecord: the process died as soon as Slack accepted the post.
	// The claim is left pending without a ts, its lease long over, so the
	// next attempt must find the message in Slack.
	BeforeRecord
)

// Crashes lists both, for table tests.
var Crashes = []Crash{AfterRecord, BeforeRecord}

func (c Crash) String() string {
	if c == AfterRecord {
		return "crash after the ts was recorded"
	}
	return "crash before the ts was recorded"
}

// Posted posts msg under key to channel (in thread threadTS when set) as
// the crashed attempt did and returns the message's ts.
func Posted(t testing.TB, pool *pgxpool.Pool, clients *slackapi.Clients, crash Crash, key, channel, threadTS string, msg blocks.Message) string {
	t.Helper()
	ctx := context.Background()
	ts, posted, err := (&slackonce.Poster{DB: pool, Slack: clients}).Post(ctx, key, channel, threadTS, msg)
	if err != nil || !posted {
		t.Fatalf("posting %s: posted %v, %v", key, posted, err)
	}
	if crash == BeforeRecord {
		_, err := pool.Exec(ctx, `UPDATE slack_posts SET ts = NULL, posted_at = NULL, claimed_at = claimed_at - interval '1 hour'
			WHERE dedup_key = $1`, key)
		if err != nil {
			t.Fatal(err)
		}
	}
	return ts
}
