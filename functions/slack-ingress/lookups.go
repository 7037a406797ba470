package main

import (
	"context"
	"errors"
	"time"

	"github.com/coffeebuddy/coffeebuddy/shared/blocks"
	"github.com/coffeebuddy/coffeebuddy/shared/coffee"
	"github.com/coffeebuddy/coffeebuddy/shared/store"
	"github.com/jackc/pgx/v5/pgxpool"
)

// dbLookups answers Lookups from PostgreSQL (reads only).
type dbLookups struct{ db *pgxpool.Pool }

// Prefill is the user's order in the channel's active run (editing it),
// else their most frequent drink and size.
func (l dbLookups) Prefill(ctx context.Context, teamID, channelID, userID string) (blocks.Prefill, error) {
	o, err := store.CurrentOrder(ctx, l.db, teamID, channelID, userID)
	switch {
	case err == nil:
		return blocks.Prefill{Drink: o.Drink, Size: o.Size, Customizations: o.Customizations, Editing: true}, nil
	case !errors.Is(err, coffee.ErrRunNotFound):
		return blocks.Prefill{}, err
	}
	drink, size, _, err := store.Favourite(ctx, l.db, userID)
	return blocks.Prefill{Drink: drink, Size: size}, err
}

func (l dbLookups) OrderingOpen(ctx context.Context, teamID, channelID string, now time.Time) (bool, error) {
	run, err := store.LatestRun(ctx, l.db, teamID, channelID)
	if errors.Is(err, coffee.ErrRunNotFound) {
		// No run yet: the /coffee that opened this form may still be on
		// its way through Kafka. order-place waits for it.
		return true, nil
	}
	if err != nil {
		return false, err
	}
	return run.Status == coffee.StatusActive && now.Before(run.LastCallAt), nil
}

func (l dbLookups) History(ctx context.Context, teamID, channelID string, page int) ([]store.HistoryEntry, int, error) {
	return store.History(ctx, l.db, teamID, channelID, page, blocks.HistoryPageSize)
}
