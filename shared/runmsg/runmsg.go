// Package runmsg keeps a run's channel message true: every function that
// changes what the message shows calls Refresh, which re-renders it from the
// database and updates it in place (chat.update, never a new post).
package runmsg

import (
	"context"
	"errors"
	"fmt"

	"github.com/coffeebuddy/coffeebuddy/shared/blocks"
	"github.com/coffeebuddy/coffeebuddy/shared/coffee"
	"github.com/coffeebuddy/coffeebuddy/shared/slackapi"
	"github.com/coffeebuddy/coffeebuddy/shared/store"
	"github.com/google/uuid"
	"github.com/slack-go/slack"
)

// Refresh re-renders run id's message from the database. A run whose message
// is not posted yet is skipped: run-announce posts the current state.
// Rendering from the database, not from the event, makes a late or repeated
// refresh harmless: it shows the newest state.
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
	if err != nil {
		return run, fmt.Errorf("runmsg: chat.update: %w", err)
	}
	return run, nil
}

// ErrNotAnnounced means a run's message is not posted yet, so it has no
// thread to reply in: a retryable condition (run-announce will post it).
var ErrNotAnnounced = errors.New("runmsg: the run message is not posted yet")

// Reply posts msg in the run's thread and returns the reply's ts.
func Reply(ctx context.Context, clients *slackapi.Clients, run coffee.Run, msg blocks.Message) (string, error) {
	if run.SlackMessageTS == "" {
		return "", fmt.Errorf("run %s: %w", run.ID, ErrNotAnnounced)
	}
	cli, err := clients.Get()
	if err != nil {
		return "", err
	}
	_, ts, err := cli.PostMessageContext(ctx, run.ChannelID, append(msg.Options(), slack.MsgOptionTS(run.SlackMessageTS))...)
	if err != nil {
		return "", fmt.Errorf("runmsg: thread reply: %w", err)
	}
	return ts, nil
}
