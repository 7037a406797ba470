package runmsg

import (
	"context"
	"errors"

	"github.com/coffeebuddy/coffeebuddy/shared/coffee"
	"github.com/coffeebuddy/coffeebuddy/shared/function"
	"github.com/coffeebuddy/coffeebuddy/shared/slackapi"
	"github.com/coffeebuddy/coffeebuddy/shared/store"
	"github.com/google/uuid"
)

// Begin is how a notify function starts on a fact about run runID that it
// consumes as consumer under CloudEvent id ceID. A malformed id or a run
// that does not exist is permanent (dead-lettered). An event already
// processed is reported done: the caller acks it and does nothing. Otherwise
// the run message is refreshed from the database (Refresh) and the run
// returned for the caller's own rules.
func Begin(ctx context.Context, q DB, clients *slackapi.Clients, consumer, ceID, runID string) (run coffee.Run, done bool, err error) {
	id, err := uuid.Parse(runID)
	if err != nil {
		return run, false, function.Permanentf("run id %q: %w", runID, err)
	}
	if done, err := store.Processed(ctx, q, consumer, ceID); err != nil || done {
		if done {
			function.Logger(ctx).Info("duplicate delivery ignored", "run_id", id)
		}
		return run, done, err
	}
	run, err = Refresh(ctx, q, clients, id)
	if errors.Is(err, coffee.ErrRunNotFound) {
		return run, false, function.Permanent(err)
	}
	return run, false, err
}
