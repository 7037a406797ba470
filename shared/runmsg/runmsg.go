// Package runmsg keeps a run's channel message true: every function that
// changes what the message shows calls Refresh, which re-renders it from the
// database and updates it in place (chat.update, never a new post). Thread
// replies go through slackonce, which posts each one once.
package runmsg

import (
	"context"
	"fmt"

	"github.com/coffeebuddy/coffeebuddy/shared/blocks"
	"github.com/coffeebuddy/coffeebuddy/shared/coffee"
	"github.com/coffeebuddy/coffeebuddy/shared/function"
	"github.com/coffeebuddy/coffeebuddy/shared/slackapi"
	"github.com/coffeebuddy/coffeebuddy/shared/store"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/slack-go/slack"
)

// DB is what Refresh needs of PostgreSQL (a *pgxpool.Pool): reads, and a
// transaction to hold the run's refresh lock in.
type DB interface {
	store.Querier
	Begin(ctx context.Context) (pgx.Tx, error)
}

// Refresh re-renders run id's message from the database. A run whose message
// is not posted yet is skipped: run-announce posts the current state.
// Rendering from the database, not from the event, makes a late or repeated
// refresh harmless: it shows the newest state. A message Slack will never
// update again (deleted by someone, its channel archived or gone) is logged
// and skipped: the run goes on without it.
//
// Refreshes of one run are serialised, across functions, replicas and
// delivery orders, by a transaction-scoped advisory lock held from the read
// to Slack's answer: the update Slack applies last was rendered last, from
// the newest state. Without it, two refreshes racing (an order confirmed
// while the run closes) could leave the older render on top.
func Refresh(ctx context.Context, db DB, clients *slackapi.Clients, id uuid.UUID) (run coffee.Run, err error) {
	err = pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, lockKey(id)); err != nil {
			return fmt.Errorf("runmsg: lock run %s: %w", id, err)
		}
		run, err = store.GetRun(ctx, tx, id)
		if err != nil || run.SlackMessageTS == "" {
			return err
		}
		orders, err := store.RunOrders(ctx, tx, id)
		if err != nil {
			return err
		}
		cli, err := clients.Get()
		if err != nil {
			return err
		}
		_, _, _, err = cli.UpdateMessageContext(ctx, run.ChannelID, run.SlackMessageTS,
			slack.MsgOptionText(blocks.RunMessageText(run, len(orders)), false),
			slack.MsgOptionBlocks(blocks.RunMessage(run, orders)...))
		err = slackapi.Courtesy(ctx, function.Logger(ctx).With("run_id", id), "refresh the run message", err)
		if err != nil {
			return fmt.Errorf("runmsg: chat.update: %w", err)
		}
		return nil
	})
	return run, err
}

// lockKey names run id's refresh lock (hashed to the advisory lock's key).
func lockKey(id uuid.UUID) string { return "runmsg:" + id.String() }
