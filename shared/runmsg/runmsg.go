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
	"github.com/slack-go/slack"
)

// Refresh re-renders run id's message from the database. A run whose message
// is not posted yet is skipped: run-announce posts the current state.
// Rendering from the database, not from the event, makes a late or repeated
// refresh harmless: it shows the newest state. A message Slack will never
// update again (deleted by someone, its channel archived or gone) is logged
// and skipped: the run goes on without it.
func Refresh(ctx context.Context, q store.Querier, clients *slackapi.Clients, id uuid.UUID) (coffee.Run, error) {
	run, err := store.GetRun(ctx, q, id)
	if err != nil {
		return run, err
	}
	if run.SlackMessageTS == "" {
		return run, nil
	}
	orders, err := store.RunOrders(ctx, q, id)
	if err != nil {
		return run, err
	}
	cli, err := clients.Get()
	if err != nil {
		return run, err
	}
	_, _, _, err = cli.UpdateMessageContext(ctx, run.ChannelID, run.SlackMessageTS,
		slack.MsgOptionText(blocks.RunMessageText(run, len(orders)), false),
		slack.MsgOptionBlocks(blocks.RunMessage(run, orders)...))
	err = slackapi.Courtesy(ctx, function.Logger(ctx).With("run_id", id), "refresh the run message", err)
	if err != nil {
		return run, fmt.Errorf("runmsg: chat.update: %w", err)
	}
	return run, nil
}
