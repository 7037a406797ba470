// Package functest holds the test set-up that the function modules'
// handler tests would otherwise each write again: a Slack stand-in with
// clients, CloudEvents, transactions, a started (and announced) run, row
// counts and a Kafka producer with an outbox relay. Only set-up lives here;
// every assertion stays in the function's own test.
package functest

import (
	"context"
	"log/slog"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/slack-go/slack"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/coffeebuddy/coffeebuddy/shared/coffee"
	"github.com/coffeebuddy/coffeebuddy/shared/config"
	"github.com/coffeebuddy/coffeebuddy/shared/kafka"
	"github.com/coffeebuddy/coffeebuddy/shared/kafka/kafkatest"
	"github.com/coffeebuddy/coffeebuddy/shared/outbox"
	"github.com/coffeebuddy/coffeebuddy/shared/slackapi"
	"github.com/coffeebuddy/coffeebuddy/shared/slackstandin"
	"github.com/coffeebuddy/coffeebuddy/shared/store"
)

// Slack starts a Slack stand-in for t and returns it with clients that talk
// to it using the stand-in's bot token, as the functions' Deps would.
func Slack(t testing.TB) (*slackstandin.Server, *slackapi.Clients) {
	t.Helper()
	srv := slackstandin.NewTestServer(t, slackstandin.Options{})
	return srv, slackapi.NewClients(config.StaticSecret("SLACK_BOT_TOKEN", slackstandin.DefaultBotToken), srv.APIURL())
}

// Event builds the CloudEvent a trigger would deliver: id, type, source and
// data as JSON. Tests call Handle with it directly (knative func style).
func Event(id, typ, source string, data any) event.Event {
	e := event.New()
	e.SetID(id)
	e.SetType(typ)
	e.SetSource(source)
	_ = e.SetData(event.ApplicationJSON, data)
	return e
}

// Tx runs fn in a transaction on pool and fails t if it returns an error,
// so tests can arrange state with the store functions that take a pgx.Tx.
func Tx(t testing.TB, pool *pgxpool.Pool, fn func(tx pgx.Tx) error) {
	t.Helper()
	if err := pgx.BeginFunc(context.Background(), pool, fn); err != nil {
		t.Fatal(err)
	}
}

// StartRun creates a run as run-start would and returns it.
func StartRun(t testing.TB, pool *pgxpool.Pool, nr store.NewRun) coffee.Run {
	t.Helper()
	var run coffee.Run
	Tx(t, pool, func(tx pgx.Tx) error {
		var err error
		run, err = store.CreateRun(context.Background(), tx, nr)
		return err
	})
	return run
}

// Announce does what run-announce does for run: posts a run message in the
// run's channel and records its ts, so thread replies and in-place updates
// have a parent. The message is plain "Coffee run" unless opts say otherwise.
// It returns the message ts.
func Announce(t testing.TB, pool *pgxpool.Pool, clients *slackapi.Clients, run coffee.Run, opts ...slack.MsgOption) string {
	t.Helper()
	cli, err := clients.Get()
	if err != nil {
		t.Fatal(err)
	}
	if len(opts) == 0 {
		opts = []slack.MsgOption{slack.MsgOptionText("Coffee run", false)}
	}
	_, ts, err := cli.PostMessage(run.ChannelID, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.SetRunMessage(context.Background(), pool, run.ID, ts); err != nil {
		t.Fatal(err)
	}
	return ts
}

// Count runs a query returning one integer (a count(*)) and returns it.
func Count(t testing.TB, pool *pgxpool.Pool, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// Producer connects a Kafka client to cluster with a discard logger and
// closes it when t ends.
func Producer(t testing.TB, cluster *kafkatest.Cluster) *kgo.Client {
	t.Helper()
	cl, err := kafka.NewClient(cluster.Brokers, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// Relay is the outbox relay a function publishes its facts with, over a
// Producer for cluster, logging nowhere.
func Relay(t testing.TB, pool *pgxpool.Pool, cluster *kafkatest.Cluster) *outbox.Relay {
	t.Helper()
	return outbox.NewRelay(pool, Producer(t, cluster), slog.New(slog.DiscardHandler))
}
